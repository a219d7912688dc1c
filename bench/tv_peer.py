"""torchvision peer for the ViT benchmark: torchvision.models.vit_b_16 / vit_l_16 in eval and
inference mode (its nn.MultiheadAttention then takes PyTorch's fused native attention path), the
same weights as the other peers (timm layout converted as scripts/golden/gen_vit_golden.py does),
the head removed, same threads. Usage: tv_peer.py MODEL WEIGHTS.safetensors CONFIG_JSON [batch] [iters]"""
import json
import os
import sys
import time

import torch
import torchvision

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts", "golden"))
from gen_vit_golden import to_torchvision  # noqa: E402
from vit_peer import load  # noqa: E402

MODELS = {"vit_base_patch16_224": torchvision.models.vit_b_16, "vit_large_patch16_224": torchvision.models.vit_l_16}


def main(model, weights, cfg_json, batch=32, iters=3):
    torch.set_num_threads(os.cpu_count())
    cfg = json.loads(cfg_json)
    net = MODELS[model]()
    sd = to_torchvision(cfg, load(weights))
    sd.pop("heads.head.weight"), sd.pop("heads.head.bias")
    net.heads = torch.nn.Identity()
    net.load_state_dict(sd)
    net.eval()
    torch.manual_seed(0)
    x = torch.randn(batch, 3, 224, 224)
    with torch.inference_mode():
        out = net(x)
        rates = []
        for _ in range(iters):
            t0 = time.perf_counter()
            out = net(x)
            rates.append(batch / (time.perf_counter() - t0))
    rates.sort()
    print(json.dumps({"impl": "torchvision", "model": model, "batch": batch, "threads": torch.get_num_threads(),
                      "images_per_s": rates[len(rates) // 2], "checksum": float(out.sum())}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], *(int(a) for a in sys.argv[4:6]))
