"""The training-set builder (`vcbench build-dataset`, `vcbench build-pairs`): sources, clips, augment,
stages, shards, manifest, verify and the DEVC export."""
