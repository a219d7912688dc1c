# Sourced by the bench drivers. vit_ref_config MEDFM MODEL: the registry entry's architecture as
# scripts/golden/vit_ref.py's config JSON. write_random_vit CONFIG_JSON OUT: seeded random weights
# (vit_ref.init_params, seed 0) as safetensors, the same file for medfm and its Python peer.
vit_ref_config() {
  "$1" models --json | /usr/bin/python3 -c "
import json,sys
e=[m for m in json.load(sys.stdin) if m['name']=='$2'][0]; a=e['arch']
print(json.dumps(dict(img_size=a['img_size'], patch_size=a['patch_size'], embed_dim=a['embed_dim'], depth=a['depth'],
  num_heads=a['num_heads'], mlp_hidden=a['mlp_hidden'], qkv_bias=True, class_token=True, reg_tokens=a['reg_tokens'],
  no_embed_class=a['no_embed_class'], init_values=a['init_values'], swiglu=a['swiglu'], norm_eps=a['norm_eps'], pool=e['pool'])))"
}
write_random_vit() {
  /usr/bin/python3 -c "
import sys, json, torch; sys.path.insert(0, 'scripts/golden'); import vit_ref, st
cfg = json.loads('''$1'''); st.save('$2', vit_ref.init_params(cfg, torch.Generator().manual_seed(0)))"
}
