"""torch.save checkpoints of the ViT golden case 'basic' (written by gen_vit_golden.py) in the
containers and nestings that released foundation models use, written by Debian's torch 1.13:

  plain_zip.pth, plain_legacy.pth       a state dict, zip and legacy (_use_new_zipfile_serialization=False)
  fp16.pth, bf16.pth, bf16_legacy.pth    the same stored in half precision
  module_state.pth                       an nn.Module-style state dict: OrderedDict with _metadata, Parameters
  retfound.pth                           {model, optimizer, epoch, scaler, args: argparse.Namespace with numpy scalars}
  dinov2_train.pth                       DINOv2's trainer: {model: {student.backbone.*, teacher.backbone.*, *_head.*}, iteration}
  dino.pth                               DINO's: {student: module.backbone.* (+1), teacher: backbone.* + head.*, args, dino_loss}
  hf/pytorch_model.bin                   a Hugging Face folder
  sharded/model.safetensors.index.json   two safetensors shards (the second fp16)
  sharded_bin/pytorch_model.bin.index.json  two torch.save shards
  evil_reduce.pth, evil_eval.pth, evil_legacy.pth  pickles that would run os.system / builtins.eval
  truncated.pth, missing_storage.pth, short_storage.pth  corrupt archives
  script.pt                              a TorchScript module

The evil files would create ckpt/PWNED if anything executed them.
"""
import argparse
import collections
import os
import pathlib
import sys
import zipfile

import numpy as np
import torch

import st


class Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def rewrite_zip(src, dst, drop=None, shorten=None):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if drop and info.filename.endswith(drop):
                continue
            if shorten and info.filename.endswith(shorten):
                data = data[: len(data) // 2]
            zout.writestr(info.filename, data)


def main(out):
    d = os.path.join(out, "ckpt")
    os.makedirs(d, exist_ok=True)
    tensors, _ = st.load(os.path.join(out, "vit_basic.safetensors"))
    p = collections.OrderedDict((k[2:], v) for k, v in tensors.items() if k.startswith("p."))
    gen = torch.Generator().manual_seed(7)
    j = lambda *a: os.path.join(d, *a)

    torch.save(p, j("plain_zip.pth"))
    torch.save(p, j("plain_legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save({k: v.half() for k, v in p.items()}, j("fp16.pth"))
    torch.save({k: v.bfloat16() for k, v in p.items()}, j("bf16.pth"))
    torch.save({k: v.bfloat16() for k, v in p.items()}, j("bf16_legacy.pth"), _use_new_zipfile_serialization=False)

    m = collections.OrderedDict((k, torch.nn.Parameter(v.clone())) for k, v in p.items())
    m._metadata = collections.OrderedDict([("", {"version": 1}), ("blocks.0", {"version": 1})])
    torch.save(m, j("module_state.pth"))

    names = list(p)
    optimizer = {"state": {i: {"step": torch.tensor(10.0), "exp_avg": torch.randn(p[n].shape, generator=gen)}
                           for i, n in enumerate(names[:3])},
                 "param_groups": [{"lr": 1e-3, "weight_decay": 0.05, "params": list(range(len(names)))}]}
    args = argparse.Namespace(model="vit_large_patch16", input_size=224, blr=np.float64(1.5e-4),
                              mask_ratio=np.float32(0.75), epochs=np.int64(800), norm_pix_loss=True,
                              output_dir=pathlib.PosixPath("/tmp/out"), accum_iter=1)
    torch.save({"model": p, "optimizer": optimizer, "epoch": 799, "scaler": {"scale": 65536.0, "_growth_tracker": 12},
                "args": args}, j("retfound.pth"))

    dv2 = collections.OrderedDict()
    for k, v in p.items():
        dv2["student.backbone." + k] = v + 0.5
        dv2["teacher.backbone." + k] = v
    for who in ("student", "teacher"):
        dv2[who + ".dino_head.mlp.0.weight"] = torch.randn(16, 32, generator=gen)
        dv2[who + ".ibot_head.last_layer.weight_g"] = torch.ones(16, 1)
    torch.save({"model": dv2, "optimizer": optimizer, "iteration": np.int64(1249)}, j("dinov2_train.pth"))

    student = collections.OrderedDict(("module.backbone." + k, v + 1) for k, v in p.items())
    student["module.head.mlp.0.weight"] = torch.randn(16, 32, generator=gen)
    teacher = collections.OrderedDict(("backbone." + k, v) for k, v in p.items())
    teacher["head.mlp.0.weight"] = torch.randn(16, 32, generator=gen)
    teacher["head.last_layer.weight_g"] = torch.ones(16, 1)
    torch.save({"student": student, "teacher": teacher, "optimizer": optimizer, "epoch": 100,
                "args": argparse.Namespace(arch="vit_small", out_dim=65536, teacher_temp=0.04),
                "dino_loss": {"center": torch.zeros(1, 16)}}, j("dino.pth"))

    os.makedirs(j("hf"), exist_ok=True)
    torch.save(p, j("hf", "pytorch_model.bin"))

    os.makedirs(j("sharded"), exist_ok=True)
    os.makedirs(j("sharded_bin"), exist_ok=True)
    half = len(names) // 2
    parts = [names[:half], names[half:]]
    wm, wm_bin = {}, {}
    for i, part in enumerate(parts):
        shard = f"model-{i + 1:05d}-of-00002.safetensors"
        st.save(j("sharded", shard), {k: (p[k].half() if i == 1 else p[k]) for k in part})
        torch.save({k: p[k] for k in part}, j("sharded_bin", f"pytorch_model-{i + 1:05d}-of-00002.bin"))
        for k in part:
            wm[k] = shard
            wm_bin[k] = f"pytorch_model-{i + 1:05d}-of-00002.bin"
    import json
    with open(j("sharded", "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": sum(v.numel() * 4 for v in p.values())}, "weight_map": wm}, f)
    with open(j("sharded_bin", "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": wm_bin}, f)

    marker = j("PWNED")
    torch.save({"model": p, "config": {"hook": Evil(os.system, "touch " + marker)}}, j("evil_reduce.pth"))
    torch.save({"model": p, "x": [Evil(eval, "open(%r, 'w').close()" % marker)]}, j("evil_eval.pth"))
    torch.save({"model": p, "x": Evil(os.system, "touch " + marker)}, j("evil_legacy.pth"),
               _use_new_zipfile_serialization=False)

    with open(j("plain_zip.pth"), "rb") as f:
        raw = f.read()
    with open(j("truncated.pth"), "wb") as f:
        f.write(raw[: len(raw) // 2])
    rewrite_zip(j("plain_zip.pth"), j("missing_storage.pth"), drop="/data/1")
    rewrite_zip(j("plain_zip.pth"), j("short_storage.pth"), shorten="/data/0")

    torch.jit.script(torch.nn.Linear(4, 2)).save(j("script.pt"))
    print(f"wrote torch.save checkpoints to {d}")


if __name__ == "__main__":
    main(sys.argv[1])
