"""build-pairs' sources and descriptors: the choices `vcbench build-pairs` lists when the CLI starts,
so they live apart from the builder (which imports numpy, pyarrow, OpenCV and torch)."""

SOURCES = ("sample", "local", "imagenet")
FEATURES = ("weightfree_gray", "vgg19")  # descriptors of the gray image: the query at colorization time is gray
