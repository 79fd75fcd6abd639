// Umbrella header: the whole host-side library (core, tensors, ops, layers, models, files, tokenizers,
// training, evaluation). Include the individual headers instead to keep compile times down. The Cuda
// pieces come in through bimamba/cuda.hpp (kernels only in translation units compiled as CUDA).
#pragma once

#include "core.hpp"

#include "eval/perplexity.hpp"
#include "io/checkpoint.hpp"
#include "io/packed_checkpoint.hpp"
#include "io/safetensors.hpp"
#include "io/token_file.hpp"
#include "io/tokenizer_loader.hpp"
#include "model/config_io.hpp"
#include "model/convert.hpp"
#include "model/generate.hpp"
#include "model/init.hpp"
#include "model/language_model.hpp"
#include "model/load.hpp"
#include "model/presets.hpp"
#include "model/storage.hpp"
#include "train/adamw.hpp"
#include "train/checkpoint.hpp"
#include "train/data.hpp"
#include "train/grad_utils.hpp"
#include "train/losses.hpp"
#include "train/model_grad.hpp"
#include "train/schedule.hpp"
#include "train/trainer.hpp"
