// `cliphba convert --from reference-pth`: a CLIP-HBA-Behavior checkpoint as the reference code
// saves it (torch.save(model.state_dict()) of its CLIPHBA wrapper, possibly under
// nn.DataParallel: keys "module.clip_model.<CLIP key>", each adapted attn.out_proj holding
// m, D, delta_D_A, delta_D_B, bias and the wrapped original_layer.weight / .bias) becomes one
// self-contained cliphba safetensors file that `cliphba predict behavior --model` takes.
//
// The file: the base CLIP tensors under OpenAI's names (an adapted block's out_proj.weight is the
// reference's original_layer.weight; its out_proj.bias is DoRA's bias), the DoRA tensors under
// their reference names, and metadata {"format": "cliphba CLIP-HBA behavior model", "model":
// JSON {dora: {rank, alpha, vision_blocks, text_blocks}, source, source_sha256, normalization,
// and, when given, prompt_texts, vocab, vocab_remap, labels}}. The file is read through the
// restricted unpickler (model/unpickler.h): loading it never runs code.
//
// DoRA's alpha is not in the state dict (the reference passes it to the layer's constructor):
// dora_alpha gives it (16, the fixture's and the reference default's value).
#pragma once

#include <cstdint>
#include <string>

#include "predict/behavior_model.h"

namespace cliphba::predict {

struct ConvertOptions {
  std::string in, out;
  double dora_alpha = 16;
  TextArgs text;                         // optional: recorded so predict needs no text options
  std::string normalization = "things";  // image statistics the model was trained with
  bool force = false;
};

struct ConvertResult {
  int64_t n_tensors = 0, vision_blocks = 0, text_blocks = 0, rank = 0;
  std::string source_sha256;
};

// Converts (see the top of this file), validating that the result loads as a CLIP with DoRA
// before writing (atomically). Throws ConfigError (output policy), IoError, DataError (not a
// torch.save zip; keys outside clip_model.* listed; adapted blocks that are not the last ones;
// tensors that do not fit; prompts/labels of different counts).
ConvertResult ConvertReferencePth(const ConvertOptions& o);

// The output policy of every predict/convert output, checked before any work: `out` not a folder
// nor one of `inputs`, its folder exists, an existing file replaced only with force. Throws
// ConfigError / IoError naming `setting`.
void CheckOutputPath(const std::string& setting, const std::string& out, bool force,
                     const std::vector<std::string>& inputs);

}  // namespace cliphba::predict
