// bimamba tokenize --tokenizer F (--jsonl IN | --text STR) [--bos]
// For each input line {"text": ...} of IN (JSON lines; blank lines skipped), or for STR, prints one line
// {"text": ..., "ids": [...]} on stdout. A line that is not a JSON object with a string "text" is an error
// naming the file and line number.
#include <bimamba/io/json.hpp>
#include <bimamba/io/tokenizer_loader.hpp>
#include <fstream>
#include <iostream>

#include "args.hpp"
#include "commands.hpp"

namespace bimamba::cli {
namespace {

void print_ids(const Tokenizer& tok, const std::string& text, bool bos) {
  EncodeOptions options;
  options.add_bos = bos;
  nlohmann::ordered_json j;
  j["text"] = text;
  j["ids"] = tok.encode(text, options);
  std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

}  // namespace

int run_tokenize(int argc, char** argv) {
  Args args("tokenize", "--tokenizer F (--jsonl IN | --text STR) [--bos]",
            "Prints {\"text\": ..., \"ids\": [...]} per input text, one JSON object a line.");
  args.option("tokenizer", "F", "tokenizer.json (HF byte-level BPE) or SentencePiece .model");
  args.option("jsonl", "IN", "JSON-lines file of {\"text\": ...} objects");
  args.option("text", "STR", "one text to tokenize");
  args.flag("bos", "prepend the tokenizer's BOS token");
  if (!args.parse(argc, argv)) return 0;
  if (args.has("jsonl") == args.has("text")) throw UsageError("give exactly one of --jsonl and --text");
  const auto tok = load_tokenizer(args.str("tokenizer"));
  const bool bos = args.has("bos");
  if (args.has("text")) {
    print_ids(*tok, args.str("text"), bos);
    return 0;
  }
  const std::string path = args.str("jsonl");
  std::ifstream in(path);
  if (!in) BIMAMBA_FAIL(path, ": cannot open");
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + " line " + std::to_string(number);
    const nlohmann::json j = parse_json(line, where);
    print_ids(*tok, json_string(j, "text", where), bos);
  }
  return 0;
}

}  // namespace bimamba::cli
