// SentencePiece ModelProto (sentencepiece_model.proto), read from the protobuf wire format: the fields
// that encoding and decoding need, with the proto's defaults.
//
//   ModelProto      1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec
//   SentencePiece   1 piece (string), 2 score (float), 3 type (enum, default NORMAL)
//   TrainerSpec     3 model_type (UNIGRAM 1 default, BPE 2, WORD 3, CHAR 4), 24 treat_whitespace_as_suffix,
//                   35 byte_fallback, 40 unk_id, 41 bos_id, 42 eos_id, 43 pad_id, 44 unk_surface
//   NormalizerSpec  1 name, 2 precompiled_charsmap, 3 add_dummy_prefix (true), 4 remove_extra_whitespaces
//                   (true), 5 escape_whitespaces (true)
// Every other field is skipped. Contract: parse_sentencepiece_model throws FormatError naming the file for a
// malformed message, a model without pieces, an empty or duplicate piece, a piece type out of range.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "../core/error.hpp"
#include "protobuf_reader.hpp"

namespace bimamba {

enum class PieceType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };
enum class SentencePieceModelType : int32_t { kUnigram = 1, kBpe = 2, kWord = 3, kChar = 4 };

struct SentencePieceEntry {
  std::string piece;
  float score = 0.0f;
  PieceType type = PieceType::kNormal;
};

struct SentencePieceModelProto {
  std::vector<SentencePieceEntry> pieces;
  // trainer_spec
  SentencePieceModelType model_type = SentencePieceModelType::kUnigram;
  bool treat_whitespace_as_suffix = false;
  bool byte_fallback = false;
  int32_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  std::string unk_surface = " \xE2\x81\x87 ";  // " ⁇ "
  // normalizer_spec
  std::string normalizer_name;
  std::string precompiled_charsmap;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
};

namespace detail {

inline SentencePieceEntry parse_piece(protobuf::Reader reader) {
  using protobuf::WireType;
  SentencePieceEntry entry;
  protobuf::Field f;
  while (reader.next(f)) {
    if (f.number == 1) {
      reader.expect(f, WireType::kLengthDelimited, "SentencePiece.piece");
      entry.piece = std::string(f.bytes);
    } else if (f.number == 2) {
      reader.expect(f, WireType::kFixed32, "SentencePiece.score");
      entry.score = f.as_float();
    } else if (f.number == 3) {
      reader.expect(f, WireType::kVarint, "SentencePiece.type");
      if (f.value < 1 || f.value > 6) reader.fail(0, "SentencePiece.type ", f.value, " is not a known piece type");
      entry.type = static_cast<PieceType>(f.value);
    }
  }
  return entry;
}

inline void parse_trainer_spec(protobuf::Reader reader, SentencePieceModelProto& model) {
  using protobuf::WireType;
  protobuf::Field f;
  while (reader.next(f)) {
    switch (f.number) {
      case 3:
        reader.expect(f, WireType::kVarint, "TrainerSpec.model_type");
        if (f.value < 1 || f.value > 4) reader.fail(0, "TrainerSpec.model_type ", f.value, " is not known");
        model.model_type = static_cast<SentencePieceModelType>(f.value);
        break;
      case 24:
        reader.expect(f, WireType::kVarint, "TrainerSpec.treat_whitespace_as_suffix");
        model.treat_whitespace_as_suffix = f.as_bool();
        break;
      case 35:
        reader.expect(f, WireType::kVarint, "TrainerSpec.byte_fallback");
        model.byte_fallback = f.as_bool();
        break;
      case 40: case 41: case 42: case 43: {
        reader.expect(f, WireType::kVarint, "TrainerSpec special id");
        int32_t* ids[] = {&model.unk_id, &model.bos_id, &model.eos_id, &model.pad_id};
        *ids[f.number - 40] = f.as_int32();
        break;
      }
      case 44:
        reader.expect(f, WireType::kLengthDelimited, "TrainerSpec.unk_surface");
        model.unk_surface = std::string(f.bytes);
        break;
      default:
        break;
    }
  }
}

inline void parse_normalizer_spec(protobuf::Reader reader, SentencePieceModelProto& model) {
  using protobuf::WireType;
  protobuf::Field f;
  while (reader.next(f)) {
    switch (f.number) {
      case 1:
        reader.expect(f, WireType::kLengthDelimited, "NormalizerSpec.name");
        model.normalizer_name = std::string(f.bytes);
        break;
      case 2:
        reader.expect(f, WireType::kLengthDelimited, "NormalizerSpec.precompiled_charsmap");
        model.precompiled_charsmap = std::string(f.bytes);
        break;
      case 3: case 4: case 5: {
        reader.expect(f, WireType::kVarint, "NormalizerSpec flag");
        bool* flags[] = {&model.add_dummy_prefix, &model.remove_extra_whitespaces, &model.escape_whitespaces};
        *flags[f.number - 3] = f.as_bool();
        break;
      }
      default:
        break;
    }
  }
}

}  // namespace detail

// Parses a serialized ModelProto; `file` names it in errors.
inline SentencePieceModelProto parse_sentencepiece_model(std::string_view data, const std::string& file) {
  using protobuf::WireType;
  SentencePieceModelProto model;
  protobuf::Reader reader(data, file);
  protobuf::Field f;
  while (reader.next(f)) {
    if (f.number == 1) {
      reader.expect(f, WireType::kLengthDelimited, "ModelProto.pieces");
      model.pieces.push_back(detail::parse_piece(reader.nested(f)));
    } else if (f.number == 2) {
      reader.expect(f, WireType::kLengthDelimited, "ModelProto.trainer_spec");
      detail::parse_trainer_spec(reader.nested(f), model);
    } else if (f.number == 3) {
      reader.expect(f, WireType::kLengthDelimited, "ModelProto.normalizer_spec");
      detail::parse_normalizer_spec(reader.nested(f), model);
    }
  }
  if (model.pieces.empty()) BIMAMBA_THROW(FormatError, file, ": SentencePiece model has no pieces");
  std::unordered_set<std::string_view> seen;
  for (size_t i = 0; i < model.pieces.size(); ++i) {
    const std::string& piece = model.pieces[i].piece;
    if (piece.empty()) BIMAMBA_THROW(FormatError, file, ": SentencePiece piece ", i, " is empty");
    if (!seen.insert(piece).second)
      BIMAMBA_THROW(FormatError, file, ": SentencePiece piece ", i, " '", piece, "' is a duplicate");
  }
  return model;
}

}  // namespace bimamba
