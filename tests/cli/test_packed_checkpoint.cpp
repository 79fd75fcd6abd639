// The packed checkpoint: round trip of the bimamba2-tiny fixture (signs bit-exact with s(latent), F32 tensors
// exact, BF16 within its rounding), U8 and U32 words agree, the file stands alone (config from metadata),
// and malformed files are refused with the file and tensor named; a failed save leaves no file behind.
#include <bimamba/io/packed_checkpoint.hpp>
#include <bimamba/io/safetensors.hpp>

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <test_support.hpp>

namespace bimamba {
namespace {

ModelConfig tiny_config(bool binary) {
  ModelConfig c;
  c.binary = binary;
  c.d_model = 32, c.n_layer = 2, c.vocab_size = 96, c.d_state = 8, c.headdim = 8, c.chunk_size = 8;
  return c;
}

struct Fixture {
  SafetensorsFile file{test::data_path("bimamba2-tiny/model.safetensors")};
  TensorSource source() const {
    return [this](const std::string& name) { return file.get(name); };
  }
};

// Unique per process: ctest runs the tests of this file as parallel processes.
std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "bimamba_" + std::to_string(::getpid()) + "_" + name;
}

bool exists(const std::string& path) { return std::ifstream(path).good(); }

TEST(PackedCheckpoint, RoundTripF32IsExact) {
  const Fixture fx;
  const ModelConfig c = tiny_config(true);
  PackedOptions opts;
  opts.scale_dtype = opts.embedding_dtype = opts.float_dtype = DType::F32;
  int64_t zeros = 0;
  const auto tensors = pack_checkpoint(c, fx.source(), opts, &zeros);
  EXPECT_EQ(zeros, 0);  // random normal weights: no exact zeros
  const std::string path = temp_path("roundtrip_f32.safetensors");
  save_packed_checkpoint(path, c, tensors, opts);

  const PackedCheckpoint p(path);
  EXPECT_EQ(p.config().d_model, 32);
  EXPECT_TRUE(p.config().binary);
  EXPECT_EQ(p.config().chunk_size, 8);
  for (const TensorSpec& s : model_tensor_specs(c)) {
    const std::vector<float> latent = to_float(fx.file.get(s.name));
    if (s.kind == ParamKind::Binary) {
      const auto bits = p.signs<uint32_t>(s.name);
      ASSERT_EQ(bits.rows(), s.shape[0]);
      ASSERT_EQ(bits.cols(), s.shape[1]);
      const std::vector<float> pm = to_float(p.latent(s.name));
      for (int64_t i = 0; i < s.shape[0]; ++i)
        for (int64_t j = 0; j < s.shape[1]; ++j) {
          const float w = latent[size_t(i * s.shape[1] + j)];
          ASSERT_EQ(bits.cview().sign(i, j), w >= 0 ? 1 : -1) << s.name << " (" << i << ", " << j << ")";
          ASSERT_EQ(pm[size_t(i * s.shape[1] + j)], w >= 0 ? 1.0f : -1.0f);
        }
    } else {
      EXPECT_EQ(p.floats(s.name), latent) << s.name;
    }
  }
  const StorageReport r = p.storage();
  EXPECT_EQ(r[ParamKind::Binary].parameters, 2 * (152 * 32 + 32 * 64));
  EXPECT_EQ(r[ParamKind::Binary].bytes, 2 * (152 * 4 + 32 * 8));
  EXPECT_EQ(r.bytes(), packed_storage(c, opts).bytes());
  EXPECT_GT(r.file_bytes, r.bytes());  // plus the header
  std::remove(path.c_str());
}

TEST(PackedCheckpoint, Bf16AndU8) {
  const Fixture fx;
  const ModelConfig c = tiny_config(true);
  PackedOptions u8;
  u8.sign_word = DType::U8;
  const std::string p32 = temp_path("u32.safetensors"), p8 = temp_path("u8.safetensors");
  save_packed_checkpoint(p32, c, pack_checkpoint(c, fx.source()), {});
  save_packed_checkpoint(p8, c, pack_checkpoint(c, fx.source(), u8), u8);
  const PackedCheckpoint a(p32), b(p8);
  EXPECT_EQ(b.sign_word(), DType::U8);
  for (const TensorSpec& s : model_tensor_specs(c)) {
    if (s.kind == ParamKind::Binary) {
      const auto x = a.signs<uint32_t>(s.name), y = b.signs<uint32_t>(s.name);
      ASSERT_EQ(std::vector<uint32_t>(x.data(), x.data() + x.rows() * x.words_per_row()),
                std::vector<uint32_t>(y.data(), y.data() + y.rows() * y.words_per_row()))
          << s.name;
      continue;
    }
    const std::vector<float> want = to_float(fx.file.get(s.name)), got = a.floats(s.name);
    const bool f32 = is_ssm_scalar(s.name);
    EXPECT_EQ(a.file().get(s.name).dtype, f32 ? DType::F32 : DType::BF16) << s.name;
    for (size_t i = 0; i < want.size(); ++i)
      // BF16 keeps 8 significant bits: round to nearest errs by at most half an ulp, <= 2^-8 relative.
      ASSERT_NEAR(got[i], want[i], f32 ? 0.0f : std::ldexp(std::fabs(want[i]), -8)) << s.name << "[" << i << "]";
  }
  EXPECT_LT(b.storage().bytes(), a.storage().bytes() + 1);  // U8 rows never take more than U32 rows
  std::remove(p32.c_str());
  std::remove(p8.c_str());
}

TEST(PackedCheckpoint, ZeroWeightsAreCountedAndPackedAsPlusOne) {
  const Fixture fx;
  const ModelConfig c = tiny_config(true);
  const std::string zeroed = "backbone.layers.1.mixer.out_proj.weight";
  const TensorSource source = [&](const std::string& name) {
    HostTensor t = fx.file.get(name);
    if (name != zeroed) return t;
    std::vector<float> v = to_float(t);
    v[0] = 0.0f, v[5] = -0.0f, v[7] = -1e-30f;
    return HostTensor::from_values<float>(name, t.shape, v);
  };
  int64_t zeros = 0;
  const std::string path = temp_path("zeros.safetensors");
  save_packed_checkpoint(path, c, pack_checkpoint(c, source, {}, &zeros));
  EXPECT_EQ(zeros, 2);  // +0 and -0; -1e-30 is negative, not zero
  const auto bits = PackedCheckpoint(path).signs<uint32_t>(zeroed);
  EXPECT_EQ(bits.cview().sign(0, 0), 1);
  EXPECT_EQ(bits.cview().sign(0, 5), 1);
  EXPECT_EQ(bits.cview().sign(0, 7), -1);
  std::remove(path.c_str());
}

TEST(PackedCheckpoint, WrongShapeIsRefusedAndNothingIsWritten) {
  const Fixture fx;
  ModelConfig c = tiny_config(true);
  c.d_state = 16;  // the fixture has 8: in_proj and conv shapes differ
  const std::string path = temp_path("never_written.safetensors");
  std::remove(path.c_str());
  try {
    save_packed_checkpoint(path, c, pack_checkpoint(c, fx.source()));
    FAIL() << "no exception";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("in_proj.weight"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(exists(path));
}

TEST(PackedCheckpoint, MalformedFilesAreRefused) {
  const Fixture fx;
  const ModelConfig c = tiny_config(true);
  const auto tensors = pack_checkpoint(c, fx.source());
  const std::string path = temp_path("malformed.safetensors");

  // A plain safetensors file (no packed metadata).
  EXPECT_THROW(PackedCheckpoint(test::data_path("bimamba2-tiny/model.safetensors")), FormatError);
  EXPECT_FALSE(is_packed_checkpoint(test::data_path("bimamba2-tiny/model.safetensors")));

  // Padding bits set: the fixture's rows are whole words, so use random weights of a config with d_model 20
  // (in_proj rows of 20 columns in one 32-bit word).
  ModelConfig odd = c;
  odd.d_model = 20, odd.expand = 2, odd.headdim = 8;  // E = 40, heads 5
  const TensorSource random = [&](const std::string& name) {
    for (const TensorSpec& s : model_tensor_specs(odd))
      if (s.name == name) return HostTensor::from_values<float>(name, s.shape, test::random_floats(size_t(s.numel()), 7));
    throw std::logic_error("unknown " + name);
  };
  auto packed = pack_checkpoint(odd, random);
  for (HostTensor& t : packed)
    if (t.name == "backbone.layers.0.mixer.in_proj.signs") {
      std::vector<uint32_t> w(size_t(t.numel()));
      std::memcpy(w.data(), t.data(), t.nbytes());
      w[0] |= 1u << 25;  // column 25 of a 20-column row
      t = HostTensor::from_values<uint32_t>(t.name, t.shape, w);
    }
  save_packed_checkpoint(path, odd, packed);
  EXPECT_TRUE(is_packed_checkpoint(path));
  try {
    PackedCheckpoint p(path);
    FAIL() << "no exception";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("padding bits"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }

  // Metadata whose config disagrees with the tensors.
  auto meta = packed_metadata(tiny_config(true), {});
  ModelConfig other = c;
  other.n_layer = 3;
  meta["config"] = packed_config_to_json(other).dump();
  save_safetensors(path, tensors, meta);
  EXPECT_THROW(PackedCheckpoint{path}, FormatError);

  // An unsupported version.
  meta = packed_metadata(c, {});
  meta["format_version"] = "99";
  save_safetensors(path, tensors, meta);
  EXPECT_THROW(PackedCheckpoint{path}, FormatError);
  std::remove(path.c_str());
}

TEST(PackedCheckpoint, ConfigJsonRoundTrip) {
  ModelConfig c = tiny_config(true);
  c.dt_limit_min = 0.001, c.ngroups = 2, c.norm_eps = 1e-6;
  const ModelConfig d = packed_config_from_json(nlohmann::json::parse(packed_config_to_json(c).dump()), "test");
  EXPECT_EQ(d.ngroups, 2);
  EXPECT_EQ(d.dt_limit_min, 0.001);
  EXPECT_TRUE(std::isinf(d.dt_limit_max));
  EXPECT_EQ(d.norm_eps, 1e-6);
  EXPECT_EQ(packed_config_to_json(d), packed_config_to_json(c));
}

}  // namespace
}  // namespace bimamba
