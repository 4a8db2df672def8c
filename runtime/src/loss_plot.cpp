// loss_plot.cpp — loss.csv and loss.svg (loss_plot.h). The SVG needs no script, font file or
// stylesheet: plain <polyline>, <circle>, <line> and <text> elements.
#include "loss_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace strata {
namespace {

std::string num(double v, const char* fmt = "%.9g") {
  char b[64];
  std::snprintf(b, sizeof b, fmt, v);
  return b;
}

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

// ~5 "nice" tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi) {
  const double span = hi - lo > 0 ? hi - lo : 1;
  const double raw = span / 5, mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::fabs(v) < step * 1e-9 ? 0 : v);
  return t;
}

}  // namespace

std::string loss_csv(const std::vector<StepRecord>& steps, const std::vector<EvalRecord>& evals) {
  std::map<int64_t, std::pair<const StepRecord*, const EvalRecord*>> rows;
  for (const auto& s : steps) rows[s.step].first = &s;
  for (const auto& e : evals) rows[e.step].second = &e;
  std::string o = "step,loss,lr,grad_norm,eval_loss,eval_accuracy\n";
  for (const auto& r : rows) {
    o += std::to_string(r.first) + ",";
    if (r.second.first) o += num(r.second.first->loss) + "," + num(r.second.first->lr) + "," + num(r.second.first->grad_norm);
    else o += ",,";
    o += ",";
    if (r.second.second) o += num(r.second.second->loss) + "," + num(r.second.second->accuracy);
    else o += ",";
    o += "\n";
  }
  return o;
}

std::string loss_svg(const std::vector<StepRecord>& steps, const std::vector<EvalRecord>& evals, const std::string& title) {
  const double W = 720, H = 420, L = 70, R = 20, T = 40, B = 55;
  double x0 = 0, x1 = 1, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : steps)
    if (std::isfinite(s.loss)) x1 = std::max<double>(x1, s.step), y0 = std::min(y0, s.loss), y1 = std::max(y1, s.loss);
  for (const auto& e : evals)
    if (std::isfinite(e.loss)) x1 = std::max<double>(x1, e.step), y0 = std::min(y0, e.loss), y1 = std::max(y1, e.loss);
  if (!(y0 <= y1)) y0 = 0, y1 = 1;
  if (y1 - y0 < 1e-9) y0 -= 0.5, y1 += 0.5;
  const double pad = (y1 - y0) * 0.05;
  y0 = std::max(0.0, y0 - pad), y1 += pad;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  std::string o;
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(W) + "\" height=\"" + num(H) + "\" viewBox=\"0 0 " + num(W) + " " + num(H) +
       "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += "<text x=\"" + num(W / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" + esc(title) + "</text>\n";
  // grid and ticks
  for (double v : ticks(y0, y1)) {
    const std::string y = num(py(v), "%.2f");
    o += "<line x1=\"" + num(L) + "\" y1=\"" + y + "\" x2=\"" + num(W - R) + "\" y2=\"" + y + "\" stroke=\"#e5e5e5\"/>\n";
    o += "<text x=\"" + num(L - 6) + "\" y=\"" + y + "\" text-anchor=\"end\" dominant-baseline=\"middle\">" + num(v, "%g") + "</text>\n";
  }
  for (double v : ticks(x0, x1)) {
    const std::string x = num(px(v), "%.2f");
    o += "<line x1=\"" + x + "\" y1=\"" + num(H - B) + "\" x2=\"" + x + "\" y2=\"" + num(H - B + 5) + "\" stroke=\"black\"/>\n";
    o += "<text x=\"" + x + "\" y=\"" + num(H - B + 18) + "\" text-anchor=\"middle\">" + num(v, "%g") + "</text>\n";
  }
  // axes and labels
  o += "<line x1=\"" + num(L) + "\" y1=\"" + num(T) + "\" x2=\"" + num(L) + "\" y2=\"" + num(H - B) + "\" stroke=\"black\"/>\n";
  o += "<line x1=\"" + num(L) + "\" y1=\"" + num(H - B) + "\" x2=\"" + num(W - R) + "\" y2=\"" + num(H - B) + "\" stroke=\"black\"/>\n";
  o += "<text x=\"" + num((L + W - R) / 2) + "\" y=\"" + num(H - 12) + "\" text-anchor=\"middle\">step</text>\n";
  o += "<text x=\"18\" y=\"" + num((T + H - B) / 2) + "\" text-anchor=\"middle\" transform=\"rotate(-90 18 " + num((T + H - B) / 2) +
       ")\">loss (cross-entropy, nats)</text>\n";
  // curves
  auto polyline = [&](const std::vector<std::pair<double, double>>& pts, const char* color) {
    std::string s = "<polyline fill=\"none\" stroke=\"" + std::string(color) + "\" stroke-width=\"1.5\" points=\"";
    for (const auto& p : pts) s += num(px(p.first), "%.2f") + "," + num(py(p.second), "%.2f") + " ";
    return s + "\"/>\n";
  };
  std::vector<std::pair<double, double>> tr, ev;
  for (const auto& s : steps)
    if (std::isfinite(s.loss)) tr.emplace_back(static_cast<double>(s.step), s.loss);
  for (const auto& e : evals)
    if (std::isfinite(e.loss)) ev.emplace_back(static_cast<double>(e.step), e.loss);
  // at most ~2000 points per curve: longer runs are drawn as bucket means
  if (tr.size() > 2000) {
    const size_t per = (tr.size() + 1999) / 2000;
    std::vector<std::pair<double, double>> d;
    for (size_t i = 0; i < tr.size(); i += per) {
      double x = 0, y = 0;
      const size_t n = std::min(per, tr.size() - i);
      for (size_t j = i; j < i + n; ++j) x += tr[j].first, y += tr[j].second;
      d.emplace_back(x / n, y / n);
    }
    tr.swap(d);
  }
  if (!tr.empty()) o += polyline(tr, "#1f77b4");
  if (!ev.empty()) {
    o += polyline(ev, "#d62728");
    for (const auto& p : ev) o += "<circle cx=\"" + num(px(p.first), "%.2f") + "\" cy=\"" + num(py(p.second), "%.2f") + "\" r=\"3\" fill=\"#d62728\"/>\n";
  }
  // legend
  const double lx = W - R - 150, ly = T + 8;
  o += "<line x1=\"" + num(lx) + "\" y1=\"" + num(ly) + "\" x2=\"" + num(lx + 24) + "\" y2=\"" + num(ly) + "\" stroke=\"#1f77b4\" stroke-width=\"2\"/>\n";
  o += "<text x=\"" + num(lx + 30) + "\" y=\"" + num(ly) + "\" dominant-baseline=\"middle\">training loss</text>\n";
  if (!ev.empty()) {
    o += "<line x1=\"" + num(lx) + "\" y1=\"" + num(ly + 18) + "\" x2=\"" + num(lx + 24) + "\" y2=\"" + num(ly + 18) + "\" stroke=\"#d62728\" stroke-width=\"2\"/>\n";
    o += "<text x=\"" + num(lx + 30) + "\" y=\"" + num(ly + 18) + "\" dominant-baseline=\"middle\">eval loss</text>\n";
  }
  o += "</svg>\n";
  return o;
}

}  // namespace strata
