// y = x @ W.T for bfloat16 x (M, K) and W (N, K), registered as torch.ops.llama_notes.bf16_mm.
//
// A batch-1 token multiplies one row by each matrix: the time is the time to stream W. Where
// the CPU has AVX512-BF16, vdpbf16ps multiplies 32 pairs of bfloat16 numbers (exactly: their
// products fit a float32) and adds them to 16 float32 sums in one instruction, so W is read
// once, as it is stored, with nothing to convert. Each thread takes whole groups of 4 rows of
// W, which lie one after the other in memory; up to 4 rows of x share each load of W. For more
// rows of x (a prompt) or another CPU, the product is ATen's (oneDNN's kernels).

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/linear.h>
#include <c10/util/BFloat16.h>
#include <torch/library.h>

#if defined(__AVX512BF16__) && defined(__AVX512BW__)
#include <immintrin.h>
#define LLAMA_NOTES_AVX512BF16 1
#endif

namespace {

constexpr int64_t MAX_ROWS = 4;  // rows of x a pass over W serves; more go to ATen

#ifdef LLAMA_NOTES_AVX512BF16
constexpr int64_t ROWS = 4;               // rows of W per group
constexpr int64_t STEP = 32;              // bfloat16 numbers per vdpbf16ps
constexpr int64_t PREFETCH_GROUPS = 2;    // how far ahead a thread asks for W, in groups

// Rows n0 .. n0 + rows - 1 of W against the MB rows of x, into y (MB, N).
template <int MB>
void group(const uint16_t* x, const uint16_t* w, c10::BFloat16* y, int64_t n0, int64_t rows, int64_t K, int64_t N) {
  __m512 acc[MB][ROWS];
  for (int i = 0; i < MB; ++i)
    for (int r = 0; r < ROWS; ++r) acc[i][r] = _mm512_setzero_ps();
  const uint16_t* row[ROWS];
  for (int r = 0; r < ROWS; ++r) row[r] = w + (n0 + std::min<int64_t>(r, rows - 1)) * K;  // a short last group repeats its last row
  for (int64_t k = 0; k < K; k += STEP) {
    // K need not be a multiple of 32: the last step loads only what is left, zeros beyond
    const __mmask32 mask = K - k >= STEP ? ~__mmask32{0} : (__mmask32{1} << (K - k)) - 1;
    __m512bh wr[ROWS];
    for (int r = 0; r < ROWS; ++r) {
      // ask for the same place 2 groups further on, into L2: it crosses the 4 KB pages where
      // the hardware prefetchers stop (into L1, a fifth slower)
      _mm_prefetch(reinterpret_cast<const char*>(row[r] + k + PREFETCH_GROUPS * ROWS * K), _MM_HINT_T1);
      wr[r] = reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(mask, row[r] + k));
    }
    for (int i = 0; i < MB; ++i) {
      const __m512bh xi = reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(mask, x + i * K + k));
      for (int r = 0; r < ROWS; ++r) acc[i][r] = _mm512_dpbf16_ps(acc[i][r], wr[r], xi);
    }
  }
  for (int i = 0; i < MB; ++i)
    for (int r = 0; r < rows; ++r) y[i * N + n0 + r] = c10::BFloat16(_mm512_reduce_add_ps(acc[i][r]));
}

template <int MB>
void rows_times_w(const uint16_t* x, const uint16_t* w, c10::BFloat16* y, int64_t K, int64_t N) {
  at::parallel_for(0, (N + ROWS - 1) / ROWS, 16, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) group<MB>(x, w, y, g * ROWS, std::min(ROWS, N - g * ROWS), K, N);
  });
}
#endif

at::Tensor bf16_mm(const at::Tensor& x, const at::Tensor& weight) {
  TORCH_CHECK_VALUE(weight.dim() == 2 && weight.scalar_type() == at::kBFloat16 && weight.is_contiguous(),
                    "bf16_mm: weight must be a contiguous bfloat16 matrix (out_features, in_features), got ",
                    weight.scalar_type(), " ", weight.sizes());
  TORCH_CHECK_VALUE(x.scalar_type() == at::kBFloat16, "bf16_mm: x must be bfloat16, got ", x.scalar_type());
  const int64_t K = weight.size(1), N = weight.size(0);
  TORCH_CHECK_VALUE(x.dim() >= 1 && x.size(-1) == K, "bf16_mm: x has ", x.dim() ? x.size(-1) : 0,
                    " features, the weight takes ", K);
  const int64_t M = x.numel() / std::max<int64_t>(K, 1);
#ifdef LLAMA_NOTES_AVX512BF16
  if (M <= MAX_ROWS && K > 0) {
    const at::Tensor rows = x.dim() == 2 && x.is_contiguous() ? x : x.reshape({M, K}).contiguous();
    at::Tensor y = at::empty({M, N}, x.options());
    const auto* xs = reinterpret_cast<const uint16_t*>(rows.data_ptr<c10::BFloat16>());
    const auto* ws = reinterpret_cast<const uint16_t*>(weight.data_ptr<c10::BFloat16>());
    auto* ys = y.data_ptr<c10::BFloat16>();
    switch (M) {
      case 1: rows_times_w<1>(xs, ws, ys, K, N); break;
      case 2: rows_times_w<2>(xs, ws, ys, K, N); break;
      case 3: rows_times_w<3>(xs, ws, ys, K, N); break;
      case 4: rows_times_w<4>(xs, ws, ys, K, N); break;
    }
    return y;
  }
#endif
  return at::linear(x.reshape({M, K}), weight);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(llama_notes, m) {
  m.def("bf16_mm(Tensor x, Tensor weight) -> Tensor");
}
TORCH_LIBRARY_IMPL(llama_notes, CPU, m) {
  m.impl("bf16_mm", &bf16_mm);
}
