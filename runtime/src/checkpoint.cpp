// checkpoint.cpp — atomic checkpoint files (checkpoint.h).
#include "checkpoint.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

#include "error.h"

namespace strata {

void (*checkpoint_fault_hook)(const char* point) = nullptr;

namespace {

void hook(const std::string& point) {
  if (checkpoint_fault_hook) checkpoint_fault_hook(point.c_str());
}

std::string parent_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) throw Error(path + ": cannot open to fsync: " + std::strerror(errno), STRATA_ERR_IO);
  const int r = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  if (r != 0) throw Error(path + ": fsync failed: " + std::strerror(e), STRATA_ERR_IO);
}

void make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
    throw Error(path + ": cannot create directory: " + std::strerror(errno), STRATA_ERR_IO);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) throw Error(path + ": exists and is not a directory", STRATA_ERR_IO);
}

void make_dirs(const std::string& path) {
  if (path.empty() || path == "/" || path == ".") return;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return;
  make_dirs(parent_of(path));
  make_dir(path);
}

// tmp is complete and fsync'ed: rename it over `path`, fsync the directory.
void commit(const std::string& tmp, const std::string& path, const std::string& name) {
  fsync_path(tmp, false);
  hook(name + ":written");
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw Error(path + ": cannot rename " + tmp + " over it: " + std::strerror(errno), STRATA_ERR_IO);
  fsync_path(parent_of(path), true);
  hook(name + ":renamed");
}

void write_raw(const std::string& path, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw Error(path + ": cannot open for writing: " + std::strerror(errno), STRATA_ERR_IO);
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if ((std::fclose(f) != 0) || !ok) throw Error(path + ": write failed (disk full?)", STRATA_ERR_IO);
}

std::string base_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  write_raw(tmp, bytes);
  commit(tmp, path, base_name(path));
}

std::string write_checkpoint(const std::string& dir, int64_t step, const CheckpointFiles& files) {
  make_dirs(dir);
  const std::string name = "step-" + std::to_string(step);
  const std::string sd = dir + "/" + name;
  make_dir(sd);
  fsync_path(dir, true);  // the new directory entry
  for (const auto& f : {std::make_pair(std::string("model.safetensors"), &files.model),
                        std::make_pair(std::string("optimizer.safetensors"), &files.optimizer)}) {
    const std::string path = sd + "/" + f.first, tmp = path + ".tmp";
    std::map<std::string, std::string> meta{{"format", "strata-checkpoint-1"}, {"step", std::to_string(step)}};
    write_safetensors(tmp, *f.second, meta);
    commit(tmp, path, f.first);
  }
  write_file_atomic(sd + "/trainer.json", json::dump(files.trainer, 1) + "\n");
  if (!files.loss_csv.empty()) write_file_atomic(dir + "/loss.csv", files.loss_csv);
  if (!files.loss_svg.empty()) write_file_atomic(dir + "/loss.svg", files.loss_svg);
  write_file_atomic(dir + "/latest", name + "\n");
  return sd;
}

std::string latest_checkpoint(const std::string& dir) {
  const std::string lp = dir + "/latest";
  std::ifstream in(lp);
  if (!in) throw Error(dir + ": no checkpoint to resume from (" + lp + " is missing: it is written after the first complete checkpoint)", STRATA_ERR_IO);
  std::string line;
  std::getline(in, line);
  if (line.rfind("step-", 0) != 0 || line.size() == 5 || line.find_first_not_of("0123456789", 5) != std::string::npos)
    throw Error(lp + ": '" + line + "' does not name a checkpoint directory (expected step-<N>)", STRATA_ERR_FORMAT);
  return dir + "/" + line;
}

namespace {

void remove_tree(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (d) {
    while (struct dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      const std::string p = path + "/" + n;
      struct stat st;
      if (::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(p);
      else ::unlink(p.c_str());
    }
    ::closedir(d);
  }
  ::rmdir(path.c_str());
}

}  // namespace

void prune_checkpoints(const std::string& dir, int keep) {
  if (keep <= 0) return;
  const std::string latest = base_name(latest_checkpoint(dir));
  std::vector<std::pair<int64_t, std::string>> steps;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (struct dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n.rfind("step-", 0) != 0 || n.size() == 5 || n.size() > 23 || n.find_first_not_of("0123456789", 5) != std::string::npos) continue;
    steps.emplace_back(std::stoll(n.substr(5)), n);
  }
  ::closedir(d);
  std::sort(steps.rbegin(), steps.rend());
  for (size_t i = static_cast<size_t>(keep); i < steps.size(); ++i)
    if (steps[i].second != latest) remove_tree(dir + "/" + steps[i].second);
}

LoadedCheckpoint load_checkpoint(const std::string& dir) {
  LoadedCheckpoint c;
  c.path = latest_checkpoint(dir);
  const std::string tj = c.path + "/trainer.json";
  std::ifstream in(tj);
  if (!in) throw Error(tj + ": cannot read (the checkpoint `latest` names is incomplete)", STRATA_ERR_IO);
  std::stringstream ss;
  ss << in.rdbuf();
  c.trainer = json::parse(ss.str(), tj);
  const json::Value* step = c.trainer.find("step");
  if (!step || !step->is_integer() || step->as_int() < 0) throw Error(tj + ": missing or invalid \"step\"", STRATA_ERR_FORMAT);
  c.step = step->as_int();
  if (base_name(c.path) != "step-" + std::to_string(c.step))
    throw Error(tj + ": step " + std::to_string(c.step) + " does not match its directory " + c.path, STRATA_ERR_FORMAT);
  c.optimizer.reset(new SafetensorsFile(c.path + "/optimizer.safetensors"));
  return c;
}

}  // namespace strata
