// A C++17 reference of the edge runtime's host side, as edge/PORTING.md specifies it:
// letterbox (cv2 INTER_LINEAR in fixed point, half-to-even rounding), the input tensor, the
// decode of either output layout, class-aware NMS, and the mapping back to image pixels.
// No OpenCV and no other dependency: images and tensors come and go as .npy files.
//
// It does not run the model (the onnxruntime wheel ships libonnxruntime.so but not the C API
// header; see PORTING.md): it decodes the raw outputs a model run produced.
//
//   yeo_port --rgb NNN.rgb.npy --size S --conf C --iou I --names labels.txt --out DIR/NNN
//            (--output NNN.output.npy | --raw-head 8,16,32 --output L0.npy,L1.npy,...)
//
// writes DIR/NNN.input.npy (its preprocessing) and DIR/NNN.detections.json (its decode + NMS),
// the files `python -m edge.verify BUNDLE --port DIR` checks against the golden cases.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// ---------------------------------------------------------------- .npy (format 1.0 / 2.0)

struct Npy {
  std::string descr;           // "<f4" or "|u1"
  std::vector<size_t> shape;
  std::vector<char> data;
};

Npy read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open");
  char magic[8];
  f.read(magic, 8);
  if (std::string(magic + 1, 5) != "NUMPY") throw std::runtime_error(path + ": not .npy");
  uint32_t hlen = 0;
  if (magic[6] == 1) {
    unsigned char b[2];
    f.read(reinterpret_cast<char*>(b), 2);
    hlen = b[0] | (b[1] << 8);
  } else {
    unsigned char b[4];
    f.read(reinterpret_cast<char*>(b), 4);
    hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  }
  std::string header(hlen, '\0');
  f.read(header.data(), hlen);
  Npy npy;
  auto d = header.find("'descr':");
  auto q1 = header.find('\'', d + 8), q2 = header.find('\'', q1 + 1);
  npy.descr = header.substr(q1 + 1, q2 - q1 - 1);
  if (header.find("'fortran_order': True") != std::string::npos)
    throw std::runtime_error(path + ": Fortran order not supported");
  auto s = header.find('(', header.find("'shape':")), e = header.find(')', s);
  std::stringstream dims(header.substr(s + 1, e - s - 1));
  std::string dim;
  size_t count = 1;
  while (std::getline(dims, dim, ','))
    if (dim.find_first_not_of(' ') != std::string::npos) {
      npy.shape.push_back(std::stoul(dim));
      count *= npy.shape.back();
    }
  size_t item = npy.descr == "|u1" ? 1 : npy.descr == "<f4" ? 4 : 0;
  if (!item) throw std::runtime_error(path + ": dtype " + npy.descr + " not supported");
  npy.data.resize(count * item);
  f.read(npy.data.data(), static_cast<std::streamsize>(npy.data.size()));
  if (!f) throw std::runtime_error(path + ": truncated");
  return npy;
}

void write_npy_f32(const std::string& path, const std::vector<size_t>& shape,
                   const std::vector<float>& values) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += std::to_string(shape[i]) + ", ";
  if (shape.size() > 1) dims.erase(dims.size() - 2);  // "(1, 3, S, S)"; a 1-d shape keeps ","
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";  // pad to 64 bytes, as numpy
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  uint16_t len = static_cast<uint16_t>(header.size());
  char le[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
  f.write(le, 2);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  f.write(reinterpret_cast<const char*>(values.data()),
          static_cast<std::streamsize>(values.size() * sizeof(float)));
}

// ---------------------------------------------------------------- letterbox (PORTING.md 2-4)

struct Letterbox {
  double scale_x, scale_y;
  int pad_x, pad_y;
};

// Python's round(): half to even (rint under the default FE_TONEAREST mode), not C's round()
long round_half_even(double v) { return std::lrint(v); }

struct Taps {
  std::vector<int> i0, i1, w0, w1;
};

Taps taps(int n_out, int n_in) {
  Taps t;
  for (int i = 0; i < n_out; ++i) {
    float s = static_cast<float>((i + 0.5) * (static_cast<double>(n_in) / n_out) - 0.5);
    int i0 = static_cast<int>(std::floor(s));
    float f = s - static_cast<float>(i0);
    if (s < 0) f = 0.0f, i0 = 0;
    int w1 = static_cast<int>(std::lrint(f * 2048.0f));
    t.i0.push_back(std::min(i0, n_in - 1));
    t.i1.push_back(std::min(i0 + 1, n_in - 1));
    t.w0.push_back(2048 - w1);
    t.w1.push_back(w1);
  }
  return t;
}

// cv2.resize(INTER_LINEAR) of an HxWx3 uint8 image, in cv2's fixed-point arithmetic
std::vector<uint8_t> resize(const uint8_t* src, int w, int h, int nw, int nh) {
  Taps ty = taps(nh, h), tx = taps(nw, w);
  std::vector<uint8_t> out(static_cast<size_t>(nw) * nh * 3);
  auto px = [&](int y, int x, int c) { return static_cast<int32_t>(src[(y * w + x) * 3 + c]); };
  // horizontal pass (weights x 2048, >> 4), then the vertical one (>> 16, rounded >> 2)
  auto row = [&](int y, int x, int c) {
    return (px(y, tx.i0[x], c) * tx.w0[x] + px(y, tx.i1[x], c) * tx.w1[x]) >> 4;
  };
  for (int y = 0; y < nh; ++y)
    for (int x = 0; x < nw; ++x)
      for (int c = 0; c < 3; ++c) {
        int32_t s0 = row(ty.i0[y], x, c), s1 = row(ty.i1[y], x, c);
        int32_t v = (((ty.w0[y] * s0) >> 16) + ((ty.w1[y] * s1) >> 16) + 2) >> 2;
        size_t at = (static_cast<size_t>(y) * nw + x) * 3 + c;
        out[at] = static_cast<uint8_t>(std::clamp(v, 0, 255));
      }
  return out;
}

// the 1x3xSxS float32 RGB input in [0, 1], and how the image was fitted
std::vector<float> preprocess(const Npy& rgb, int size, Letterbox& box) {
  int h = static_cast<int>(rgb.shape[0]), w = static_cast<int>(rgb.shape[1]);
  const auto* src = reinterpret_cast<const uint8_t*>(rgb.data.data());
  double scale = std::min(static_cast<double>(size) / w, static_cast<double>(size) / h);
  int nw = static_cast<int>(round_half_even(w * scale));
  int nh = static_cast<int>(round_half_even(h * scale));
  std::vector<uint8_t> fitted = (nw != w || nh != h)
                                    ? resize(src, w, h, nw, nh)
                                    : std::vector<uint8_t>(src, src + rgb.data.size());
  int left = static_cast<int>(round_half_even((size - nw) / 2.0 - 0.1));
  int top = static_cast<int>(round_half_even((size - nh) / 2.0 - 0.1));
  std::vector<uint8_t> canvas(static_cast<size_t>(size) * size * 3, 114);
  for (int y = 0; y < nh; ++y)
    std::copy_n(&fitted[static_cast<size_t>(y) * nw * 3], nw * 3,
                &canvas[(static_cast<size_t>(y + top) * size + left) * 3]);
  box = {static_cast<double>(nw) / w, static_cast<double>(nh) / h, left, top};
  std::vector<float> x(static_cast<size_t>(3) * size * size);
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < size * size; ++i)
      x[static_cast<size_t>(c) * size * size + i] = static_cast<float>(canvas[i * 3 + c]) / 255.0f;
  return x;
}

// ---------------------------------------------------------------- decode + NMS (PORTING.md 5-6)

struct Candidate {
  float x1, y1, x2, y2, score;
  int cls;
};

std::vector<Candidate> decode_in_graph(const Npy& out, float conf) {
  size_t rows = out.shape[1], anchors = out.shape[2];
  const auto* p = reinterpret_cast<const float*>(out.data.data());
  std::vector<Candidate> found;
  for (size_t a = 0; a < anchors; ++a) {
    int cls = 0;
    float best = p[4 * anchors + a];
    for (size_t c = 1; c + 4 < rows; ++c)
      if (p[(4 + c) * anchors + a] > best) {  // the first maximum wins ties
        best = p[(4 + c) * anchors + a];
        cls = static_cast<int>(c);
      }
    if (!(best > conf)) continue;  // strict
    float cx = p[a], cy = p[anchors + a], w = p[2 * anchors + a], h = p[3 * anchors + a];
    found.push_back({cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, best, cls});
  }
  return found;
}

std::vector<Candidate> decode_raw_head(const std::vector<Npy>& outs,
                                       const std::vector<int>& strides, float conf) {
  float logit_min = std::log(conf / (1 - conf));
  std::vector<Candidate> found;
  for (size_t level = 0; level < strides.size(); ++level) {
    const Npy& dist = outs[2 * level];
    const Npy& logits = outs[2 * level + 1];
    size_t nc = logits.shape[1], hh = logits.shape[2], ww = logits.shape[3], hw = hh * ww;
    size_t reg_max = dist.shape[1] / 4;
    const auto* d = reinterpret_cast<const float*>(dist.data.data());
    const auto* l = reinterpret_cast<const float*>(logits.data.data());
    for (size_t a = 0; a < hw; ++a) {
      int cls = 0;
      float best = l[a];
      for (size_t c = 1; c < nc; ++c)
        if (l[c * hw + a] > best) {
          best = l[c * hw + a];
          cls = static_cast<int>(c);
        }
      if (!(best > logit_min)) continue;  // strict, as sigmoid(best) > conf
      float side[4];
      for (size_t k = 0; k < 4; ++k) {  // DFL: expectation of the softmax over reg_max bins
        float m = d[(k * reg_max) * hw + a];
        for (size_t i = 1; i < reg_max; ++i) m = std::max(m, d[(k * reg_max + i) * hw + a]);
        float sum = 0, dot = 0;
        for (size_t i = 0; i < reg_max; ++i) {
          float e = std::exp(d[(k * reg_max + i) * hw + a] - m);
          sum += e;
          dot += e * static_cast<float>(i);
        }
        side[k] = dot / sum;
      }
      float cx = static_cast<float>(a % ww) + 0.5f, cy = static_cast<float>(a / ww) + 0.5f;
      float s = static_cast<float>(strides[level]);
      found.push_back({(cx - side[0]) * s, (cy - side[1]) * s, (cx + side[2]) * s,
                       (cy + side[3]) * s, 1.0f / (1.0f + std::exp(-best)), cls});
    }
  }
  return found;
}

float iou(const Candidate& a, const Candidate& b, float off_a, float off_b) {
  float x1 = std::max(a.x1 + off_a, b.x1 + off_b), y1 = std::max(a.y1 + off_a, b.y1 + off_b);
  float x2 = std::min(a.x2 + off_a, b.x2 + off_b), y2 = std::min(a.y2 + off_a, b.y2 + off_b);
  float inter = std::max(x2 - x1, 0.0f) * std::max(y2 - y1, 0.0f);
  float area_a = (a.x2 - a.x1) * (a.y2 - a.y1), area_b = (b.x2 - b.x1) * (b.y2 - b.y1);
  return inter / std::max(area_a + area_b - inter, 1e-9f);
}

std::vector<Candidate> nms(const std::vector<Candidate>& c, float iou_max, size_t max_det = 300) {
  std::vector<size_t> order(c.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return c[a].score > c[b].score; });
  std::vector<Candidate> keep;
  std::vector<bool> gone(c.size(), false);
  for (size_t i = 0; i < order.size() && keep.size() < max_det; ++i) {
    if (gone[order[i]]) continue;
    const Candidate& k = c[order[i]];
    keep.push_back(k);
    for (size_t j = i + 1; j < order.size(); ++j) {
      const Candidate& o = c[order[j]];
      // class-aware: boxes of class c shift by c * 7680 (ultralytics' max_wh)
      if (!gone[order[j]] && iou(k, o, k.cls * 7680.0f, o.cls * 7680.0f) > iou_max)
        gone[order[j]] = true;
    }
  }
  return keep;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) out += (ch == '"' || ch == '\\') ? std::string("\\") + ch : std::string(1, ch);
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, sep)) parts.push_back(part);
  return parts;
}

}  // namespace

int main(int argc, char** argv) {
  std::string rgb_path, output, names_path, out, strides_arg;
  int size = 0;
  float conf = 0.25f, iou_max = 0.7f;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--rgb") rgb_path = v;
    else if (k == "--output") output = v;
    else if (k == "--names") names_path = v;
    else if (k == "--out") out = v;
    else if (k == "--raw-head") strides_arg = v;
    else if (k == "--size") size = std::stoi(v);
    else if (k == "--conf") conf = std::stof(v);
    else if (k == "--iou") iou_max = std::stof(v);
    else { std::cerr << "yeo_port: unknown option " << k << "\n"; return 2; }
  }
  if (rgb_path.empty() || output.empty() || names_path.empty() || out.empty() || size <= 0) {
    std::cerr << "usage: yeo_port --rgb F --output F[,F...] [--raw-head 8,16,32] --size S "
                 "--conf C --iou I --names labels.txt --out PREFIX\n";
    return 2;
  }
  try {
    Npy rgb = read_npy(rgb_path);
    if (rgb.descr != "|u1" || rgb.shape.size() != 3 || rgb.shape[2] != 3)
      throw std::runtime_error(rgb_path + ": expected HxWx3 uint8 RGB");
    Letterbox box{};
    std::vector<float> x = preprocess(rgb, size, box);
    auto s = static_cast<size_t>(size);
    write_npy_f32(out + ".input.npy", {1, 3, s, s}, x);

    std::vector<Candidate> cands;
    if (strides_arg.empty()) {
      cands = decode_in_graph(read_npy(output), conf);
    } else {
      std::vector<int> strides;
      for (const auto& s : split(strides_arg, ',')) strides.push_back(std::stoi(s));
      std::vector<Npy> outs;
      for (const auto& f : split(output, ',')) outs.push_back(read_npy(f));
      if (outs.size() != 2 * strides.size())
        throw std::runtime_error("--output: two files per stride");
      cands = decode_raw_head(outs, strides, conf);
    }
    std::vector<std::string> names;
    std::ifstream nf(names_path);
    for (std::string line; std::getline(nf, line);) if (!line.empty()) names.push_back(line);

    int w = static_cast<int>(rgb.shape[1]), h = static_cast<int>(rgb.shape[0]);
    std::ofstream js(out + ".detections.json");
    js << "[";
    bool first = true;
    for (const Candidate& c : nms(cands, iou_max)) {  // back to image pixels, clipped
      double x1 = std::clamp((c.x1 - box.pad_x) / box.scale_x, 0.0, static_cast<double>(w));
      double y1 = std::clamp((c.y1 - box.pad_y) / box.scale_y, 0.0, static_cast<double>(h));
      double x2 = std::clamp((c.x2 - box.pad_x) / box.scale_x, 0.0, static_cast<double>(w));
      double y2 = std::clamp((c.y2 - box.pad_y) / box.scale_y, 0.0, static_cast<double>(h));
      char buf[256];
      std::snprintf(buf, sizeof buf, "%s{\"box\": [%.4f, %.4f, %.4f, %.4f], \"score\": %.6f, ",
                    first ? "" : ", ", x1, y1, x2, y2, c.score);
      js << buf << "\"class_id\": " << c.cls << ", \"class_name\": \""
         << json_escape(c.cls < static_cast<int>(names.size()) ? names[c.cls] : "?") << "\"}";
      first = false;
    }
    js << "]\n";
  } catch (const std::exception& e) {
    std::cerr << "yeo_port: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
