// y = x @ W.T for W in blocks of 32 weights w = d*q + m (llama.cpp's Q4_1): q from 0 to 15,
// d and m float16 as the GGUF file stores them. Registered as torch.ops.llama_notes.int4_mm;
// llama_notes/kernels.py compiles it on first use, for the CPU it runs on. The same code
// multiplies 8-bit blocks w = d*q, q from -128 to 127 (Q8_0, the output layer), as
// torch.ops.llama_notes.int8_mm.
//
// Batch-1 decoding reads every weight once per token, so the layout is made for streaming:
// the weights of 4 output rows and 2 blocks (64 weights) sit in one tile, their codes then
// their scales (160 bytes with 4-bit codes, 272 with 8-bit ones), and the tiles of 4 rows
// follow each other. A thread reads one contiguous run of memory.
//
// The weights are multiplied as the file stores them: the codes q and the float16 d and m.
// With bfloat16 activations on a CPU with AVX512-VNNI, each block of 32 activations becomes
// 16-bit integers and one scale (amax / 32767: 15 significant bits, where bfloat16 has 8),
// and vpdpwssd adds 32 exact integer products per instruction; otherwise a plain loop
// (vectorized by the compiler) multiplies in float32.

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__F16C__)
#include <immintrin.h>
#define LLAMA_NOTES_AVX512VNNI 1
#endif

namespace {

constexpr int64_t GROUP = 32;        // weights per block
constexpr int64_t PAIR = 2 * GROUP;  // the blocks A and B of a tile
constexpr int64_t ROWS = 4;          // output rows per tile
template <int Bits>
constexpr int64_t kCodeBytes = PAIR * Bits / 8;  // a row's codes in a tile
template <int Bits>
constexpr int kScales = Bits == 4 ? 4 : 2;  // float16 (dA, dB, mA, mB) per row; 8-bit blocks have no m
template <int Bits>
constexpr int64_t kTile = ROWS * (kCodeBytes<Bits> + kScales<Bits> * 2);  // the codes, then the scales
constexpr int64_t PREFETCH_TILES = 32;  // how far ahead a thread asks for its weights

// 4 bits: byte i (0 to 31) of a row's codes holds, in its low nibble, weight i of
// [A0..A15, B0..B15] and, in its high nibble, weight i of [A16..A31, B16..B31]. 8 bits: byte i
// (0 to 63) holds weight i of [A0..A15, B0..B15, A16..A31, B16..B31]. Either way the codes
// come in two halves of 32 that line up with 32 activations, and the 16 sums of pairs of a
// half fall in lanes 0-7 for block A, 8-15 for block B.
template <int Bits>
inline int code(const uint8_t* codes, int block, int j) {
  const int i = block * 16 + j % 16;
  if constexpr (Bits == 4) return j < 16 ? codes[i] & 0x0F : codes[i] >> 4;
  else return static_cast<int8_t>(codes[j < 16 ? i : 32 + i]);
}

// The activations, in blocks of 32. For the portable path: float32 values and block sums.
// For the AVX512-VNNI path: 16-bit integers in the order [A0..15, B0..15, A16..31, B16..31]
// of each tile, and per tile (scale A, scale B, sum A, sum B), the sums for the m terms.
struct Activations {
  void* values;   // (M, pairs * 64): float32 in block order, or int16 reordered
  float* scales;  // (M, pairs, 4)
  template <typename V>
  V* as() const { return static_cast<V*>(values); }
};

#ifdef LLAMA_NOTES_AVX512VNNI
// One block of 32 bfloat16 activations as 16-bit integers (out[0..15] and out[32..47]), its
// scale (amax / 32767) in s[ab] and its sum in s[2 + ab].
inline void quantize_block(const uint16_t* x, int16_t* out, float* s, int ab) {
  const auto as_float = [](const uint16_t* p) {  // bfloat16 is the high half of a float32
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
  };
  const __m512 v0 = as_float(x), v1 = as_float(x + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
  const __m512 inverse = _mm512_set1_ps(amax > 0.0f ? 32767.0f / amax : 0.0f);
  s[ab] = amax / 32767.0f;
  s[2 + ab] = _mm512_reduce_add_ps(_mm512_add_ps(v0, v1));
  // cvtps rounds to the nearest integer, ties to even (the default rounding mode)
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtsepi32_epi16(_mm512_cvtps_epi32(_mm512_mul_ps(v0, inverse))));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32), _mm512_cvtsepi32_epi16(_mm512_cvtps_epi32(_mm512_mul_ps(v1, inverse))));
}
#endif

// Whether activations of type T go to the AVX512-VNNI path as 16-bit integers.
template <typename T>
#ifdef LLAMA_NOTES_AVX512VNNI
constexpr bool kIntegers = std::is_same_v<T, c10::BFloat16>;
#else
constexpr bool kIntegers = false;
#endif

template <typename T>
Activations prepare(const T* x, int64_t M, int64_t K, int64_t pairs) {
  // One buffer per calling thread, kept from call to call: a batch-1 product of SmolLM2 takes
  // a few microseconds, and two tensor allocations would add a tenth to it.
  thread_local std::vector<float> scratch;
  scratch.resize(M * pairs * (PAIR + 4));
  Activations a{scratch.data(), scratch.data() + M * pairs * PAIR};
  at::parallel_for(0, M, 16, [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) {
      for (int64_t b = 0; b < pairs * 2; ++b) {
        float* s = a.scales + (m * pairs + b / 2) * 4;
        const bool padding = b * GROUP >= K;  // K is a multiple of 32: a block is all x or all padding
        if constexpr (kIntegers<T>) {
#ifdef LLAMA_NOTES_AVX512VNNI
          int16_t* out = a.as<int16_t>() + m * pairs * PAIR + (b / 2) * PAIR + (b % 2) * 16;
          if (!padding) {
            quantize_block(reinterpret_cast<const uint16_t*>(x + m * K + b * GROUP), out, s, b % 2);
            continue;
          }
          std::fill_n(out, 16, int16_t{0});
          std::fill_n(out + 32, 16, int16_t{0});
          s[b % 2] = 0.0f;  // zeros pad K to the tiles: scale 0, sum 0
          s[2 + b % 2] = 0.0f;
#endif
        } else {
          float* out = a.as<float>() + m * pairs * PAIR + b * GROUP;
          float sum = 0.0f;
          for (int j = 0; j < GROUP; ++j) {
            out[j] = padding ? 0.0f : static_cast<float>(x[m * K + b * GROUP + j]);  // zeros pad K to the tiles
            sum += out[j];
          }
          s[b % 2] = 1.0f;
          s[2 + b % 2] = sum;
        }
      }
    }
  });
  return a;
}

// One tile row against one activation row, in float32: the portable path.
template <int Bits>
inline float dot_tile(const uint8_t* codes, const c10::Half* scales, const float* x, const float* sums) {  // sums: (1, 1, sum A, sum B)
  const auto scale = [&](int i) { return static_cast<float>(scales[i]); };
  float t[2];
  for (int block = 0; block < 2; ++block) {
    float lanes[16] = {};  // independent sums the compiler turns into one vector
    for (int j = 0; j < GROUP; ++j) lanes[j % 16] += code<Bits>(codes, block, j) * x[block * GROUP + j];
    t[block] = 0.0f;
    for (float lane : lanes) t[block] += lane;
  }
  if constexpr (Bits == 4) return t[0] * scale(0) + t[1] * scale(1) + scale(2) * sums[2] + scale(3) * sums[3];
  else return t[0] * scale(0) + t[1] * scale(1);
}

// fn(t) for every tile of 4 output rows, the tiles shared out among the threads.
template <typename F>
void for_each_tile(int64_t N, const F& fn) {
  at::parallel_for(0, (N + ROWS - 1) / ROWS, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) fn(t);
  });
}

template <int Bits, typename T>
void mm_portable(const uint8_t* w, const Activations& a, T* y, int64_t M, int64_t N, int64_t pairs) {
  const float* x = a.as<float>();
  const float* sums = a.scales;
  for_each_tile(N, [&](int64_t t) {
    for (int64_t m = 0; m < M; ++m) {
      float acc[ROWS] = {};
      for (int64_t p = 0; p < pairs; ++p) {
        const uint8_t* tile = w + (t * pairs + p) * kTile<Bits>;
        const auto* scales = reinterpret_cast<const c10::Half*>(tile + ROWS * kCodeBytes<Bits>);
        for (int r = 0; r < ROWS; ++r)
          acc[r] += dot_tile<Bits>(tile + r * kCodeBytes<Bits>, scales + kScales<Bits> * r, x + (m * pairs + p) * PAIR, sums + (m * pairs + p) * 4);
      }
      for (int r = 0; r < ROWS && t * ROWS + r < N; ++r) y[m * N + t * ROWS + r] = T(acc[r]);
    }
  });
}

#ifdef LLAMA_NOTES_AVX512VNNI
// Lanes of the 4 rows' products (dA dxA, dB dxB, mA sA, mB sB), or (dA dxA, dB dxB), that
// scale row r's sums: dA dxA for lanes 0-7 (block A), dB dxB for lanes 8-15 (block B).
template <int Bits>
inline __m512i a_then_b(int r) {
  return _mm512_add_epi32(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0), _mm512_set1_epi32(kScales<Bits> * r));
}

// Rows m0 .. m0 + MB - 1 of x against tile t: each tile's codes are unpacked once for the
// MB rows (a prompt's tokens), which then cost only their multiplications.
template <int Bits, int MB, typename T>
inline void tile_rows(const uint8_t* w, const int16_t* x, const float* xs, T* y, int64_t t, int64_t m0, int64_t N, int64_t pairs) {
  const __m512i low = _mm512_set1_epi16(0x0F);
  __m512 acc[MB][ROWS], macc[MB];  // macc: 4-bit blocks' m terms, in lanes 2 and 3 of each row's 4
  for (int i = 0; i < MB; ++i) {
    if constexpr (Bits == 4) macc[i] = _mm512_setzero_ps();
    for (int r = 0; r < ROWS; ++r) acc[i][r] = _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < pairs; ++p) {
    const uint8_t* tile = w + (t * pairs + p) * kTile<Bits>;
    // Ask for the tile 32 ahead (5 KB) into L2: far enough ahead to cover memory's latency and to
    // cross 4 KB pages, where the hardware prefetchers stop (8 tiles ahead into L1: a tenth slower).
    for (int line = 0; line < kTile<Bits>; line += 64)
      _mm_prefetch(reinterpret_cast<const char*>(tile + PREFETCH_TILES * kTile<Bits> + line), _MM_HINT_T1);
    const auto* scales = tile + ROWS * kCodeBytes<Bits>;
    const __m512 dm = Bits == 4 ? _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales)))
                                : _mm512_cvtph_ps(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales))));
    __m512i lo[ROWS], hi[ROWS];  // the two halves of each row's codes, as 16-bit integers
    for (int r = 0; r < ROWS; ++r) {
      const auto* codes = reinterpret_cast<const __m256i*>(tile + r * kCodeBytes<Bits>);
      if constexpr (Bits == 4) {
        const __m512i v = _mm512_cvtepu8_epi16(_mm256_loadu_si256(codes));
        lo[r] = _mm512_and_si512(v, low);
        hi[r] = _mm512_srli_epi16(v, 4);
      } else {
        lo[r] = _mm512_cvtepi8_epi16(_mm256_loadu_si256(codes));
        hi[r] = _mm512_cvtepi8_epi16(_mm256_loadu_si256(codes + 1));
      }
    }
    for (int i = 0; i < MB; ++i) {
      const int64_t row = (m0 + i) * pairs + p;
      const __m512i x1 = _mm512_loadu_si512(x + row * PAIR), x2 = _mm512_loadu_si512(x + row * PAIR + 32);
      __m512 scaled;
      if constexpr (Bits == 4) {
        scaled = _mm512_mul_ps(dm, _mm512_broadcast_f32x4(_mm_loadu_ps(xs + row * 4)));  // (scale A, scale B, sum A, sum B)
        macc[i] = _mm512_add_ps(macc[i], scaled);
      } else {
        double ab;  // (scale A, scale B), repeated across the lanes
        std::memcpy(&ab, xs + row * 4, sizeof ab);
        scaled = _mm512_mul_ps(dm, _mm512_castpd_ps(_mm512_set1_pd(ab)));
      }
      for (int r = 0; r < ROWS; ++r) {
        __m512i dot = _mm512_dpwssd_epi32(_mm512_setzero_si512(), lo[r], x1);
        dot = _mm512_dpwssd_epi32(dot, hi[r], x2);  // exact: 4 * 128 * 32767 < 2^24, so is the float
        acc[i][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(a_then_b<Bits>(r), scaled), acc[i][r]);
      }
    }
  }
  for (int i = 0; i < MB; ++i) {
    alignas(64) float m16[16];
    if constexpr (Bits == 4) _mm512_store_ps(m16, macc[i]);
    for (int r = 0; r < ROWS && t * ROWS + r < N; ++r) {
      float sum = _mm512_reduce_add_ps(acc[i][r]);
      if constexpr (Bits == 4) sum += m16[4 * r + 2] + m16[4 * r + 3];
      y[(m0 + i) * N + t * ROWS + r] = T(sum);
    }
  }
}

template <int Bits, typename T>
void mm_avx512vnni(const uint8_t* w, const Activations& a, T* y, int64_t M, int64_t N, int64_t pairs) {
  const auto* x = a.as<int16_t>();
  const float* xs = a.scales;
  for_each_tile(N, [&](int64_t t) {
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) tile_rows<Bits, 4>(w, x, xs, y, t, m, N, pairs);
    for (; m + 2 <= M; m += 2) tile_rows<Bits, 2>(w, x, xs, y, t, m, N, pairs);
    if (m < M) tile_rows<Bits, 1>(w, x, xs, y, t, m, N, pairs);
  });
}
#endif

template <int Bits, typename T, typename Out>
void run(const at::Tensor& x, const at::Tensor& tiles, at::Tensor& y, int64_t M, int64_t K, int64_t N, int64_t pairs) {
  const Activations a = prepare(x.data_ptr<T>(), M, K, pairs);
#ifdef LLAMA_NOTES_AVX512VNNI
  if constexpr (kIntegers<T>) return mm_avx512vnni<Bits>(tiles.data_ptr<uint8_t>(), a, y.data_ptr<Out>(), M, N, pairs);
#endif
  mm_portable<Bits>(tiles.data_ptr<uint8_t>(), a, y.data_ptr<Out>(), M, N, pairs);
}

template <int Bits, typename T>
void run_in(const at::Tensor& x, const at::Tensor& tiles, at::Tensor& y, int64_t M, int64_t K, int64_t N, int64_t pairs) {
  if (y.scalar_type() == at::kBFloat16) run<Bits, T, c10::BFloat16>(x, tiles, y, M, K, N, pairs);
  else run<Bits, T, float>(x, tiles, y, M, K, N, pairs);
}

// y (M, out_features) = x (..., K) @ W.T, in x's dtype or out_dtype (bfloat16 or float32).
template <int Bits>
at::Tensor block_mm(const at::Tensor& x, const at::Tensor& tiles, int64_t out_features, std::optional<at::ScalarType> out_dtype) {
  constexpr const char* name = Bits == 4 ? "int4_mm" : "int8_mm";
  TORCH_CHECK_VALUE(tiles.dim() == 3 && tiles.size(2) == kTile<Bits> && tiles.scalar_type() == at::kByte && tiles.is_contiguous(),
                    name, ": tiles must be a contiguous uint8 tensor (rows / 4, in / 64, ", kTile<Bits>, "), got ", tiles.sizes());
  const int64_t K = x.size(-1), pairs = tiles.size(1), N = out_features, M = x.numel() / std::max<int64_t>(K, 1);
  TORCH_CHECK_VALUE(K % GROUP == 0 && K <= pairs * PAIR && K > (pairs - 1) * PAIR, name, ": x has ", K,
                    " features, the tiles hold ", pairs * PAIR, " (or ", pairs * PAIR - GROUP, ", the last block padding)");
  TORCH_CHECK_VALUE(N <= tiles.size(0) * ROWS && N > (tiles.size(0) - 1) * ROWS, name, ": out_features=", N,
                    " does not match ", tiles.size(0), " tiles of ", ROWS, " rows");
  const at::ScalarType out = out_dtype.value_or(x.scalar_type());
  for (const at::ScalarType t : {x.scalar_type(), out})
    TORCH_CHECK_VALUE(t == at::kBFloat16 || t == at::kFloat, name, ": x and y must be bfloat16 or float32, got ", t);
  // The layers pass rows (M, K) already: a reshape through the dispatcher costs more than
  // the check, on every one of a token's 121 products.
  const at::Tensor rows = x.dim() == 2 && x.is_contiguous() ? x : x.reshape({M, K}).contiguous();
  at::Tensor y = at::empty({M, N}, x.options().dtype(out));
  if (x.scalar_type() == at::kBFloat16) run_in<Bits, c10::BFloat16>(rows, tiles, y, M, K, N, pairs);
  else run_in<Bits, float>(rows, tiles, y, M, K, N, pairs);
  return y;
}

}  // namespace

TORCH_LIBRARY(llama_notes, m) {
  m.def("int4_mm(Tensor x, Tensor tiles, int out_features, ScalarType? out_dtype=None) -> Tensor");
  m.def("int8_mm(Tensor x, Tensor tiles, int out_features, ScalarType? out_dtype=None) -> Tensor");
}
TORCH_LIBRARY_IMPL(llama_notes, CPU, m) {
  m.impl("int4_mm", &block_mm<4>);
  m.impl("int8_mm", &block_mm<8>);
}
