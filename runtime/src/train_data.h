// train_data.h — token files (`.tok`, written by `strata data`; format in compiler/data/tokenfile.ts
// and docs/TRAINING.md) and the batches training reads from them.
//
// The batch convention is compiler/data/batches.ts's: position t of a row reads token t and
// predicts token t + 1 (its target), weighted by mask[t + 1] (1 without a mask). A probe file
// (rowLength n > 0) has one unit per row and T ≤ n − 1 (the row's first T + 1 tokens); a stream
// (rowLength 0) has floor((count − 1) / T) units, unit u = tokens u·T … u·T + T.
//
// Order: training sample j (micro-batch k of step s holds j = (s·K + k)·B … + B − 1) is unit
// perm_e(j mod U) of epoch e = j div U, where perm_e is a Fisher–Yates shuffle driven by
// splitmix64 seeded with (seed, e): a pure function of (seed, j), so a resumed run reads exactly
// the batches the uninterrupted run would have. Evaluation reads units in file order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace strata {

constexpr uint32_t kTokNoEos = 0xFFFFFFFFu;

// A validated, memory-mapped token file.
class TokenFile {
 public:
  // Opens and checks the header (naming the wrong field and what would be valid), the file size
  // and every id / mask value. Throws strata::Error (STRATA_ERR_FORMAT / STRATA_ERR_IO).
  explicit TokenFile(const std::string& path);
  ~TokenFile();
  TokenFile(const TokenFile&) = delete;
  TokenFile& operator=(const TokenFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t count() const { return count_; }
  uint32_t vocab() const { return vocab_; }
  uint32_t row_length() const { return row_length_; }
  uint32_t id_bytes() const { return id_bytes_; }
  uint32_t eos() const { return eos_; }  // kTokNoEos: none
  bool has_mask() const { return mask_ != nullptr; }
  uint64_t file_bytes() const { return size_; }
  // A 64-bit hash of the whole file (header, ids, mask), computed on first use: a resumed run
  // checks that it reads the same tokens, not only as many (trainer.json "data.hash").
  uint64_t content_hash() const;
  uint32_t id(uint64_t i) const;
  uint8_t mask(uint64_t i) const { return mask_ ? mask_[i] : 1; }

 private:
  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  const uint8_t* ids_ = nullptr;
  const uint8_t* mask_ = nullptr;
  uint64_t count_ = 0;
  uint32_t vocab_ = 0, row_length_ = 0, id_bytes_ = 0, eos_ = kTokNoEos;
  mutable uint64_t hash_ = 0;
  mutable bool hashed_ = false;
};

// The sequence length a file allows: probe files T ≤ rowLength − 1; streams need one window of
// T + 1 tokens. Throws (STRATA_ERR_INVALID_ARGUMENT) saying what would be valid; `flag` names the
// option in messages ("--data").
void check_seq_for(const TokenFile& f, int T, const std::string& flag);
// Units (rows / windows) of T tokens + 1.
uint64_t batch_units(const TokenFile& f, int T);

// Fills [rows, T] tokens/targets/weights for units `units[0..rows)`.
void fill_units(const TokenFile& f, int T, const uint64_t* units, int rows, int32_t* tokens, int32_t* targets, float* weights);

// The seeded, epoch-shuffled order of training samples.
class SampleOrder {
 public:
  SampleOrder(uint64_t units, uint64_t seed) : units_(units), seed_(seed) {}
  uint64_t unit(uint64_t sample);  // which unit training sample `sample` reads

 private:
  uint64_t units_, seed_;
  uint64_t epoch_ = UINT64_MAX;
  std::vector<uint64_t> perm_;
};

// splitmix64 (Steele et al.): the one generator the data order uses.
uint64_t splitmix64(uint64_t& state);

}  // namespace strata
