"""What a leaderboard row cites: the papers of the built-in models, wrappers and listed systems.

Plumbing with no imports, so the reports (which may not import the model packages) and
`vcbench.baselines.registry` read one table. A plug-in model cites through its class attribute
`Colorizer.citation`, which only the model registry can load: `baselines.registry.model_citation`
hands that lookup in as `plugin`.
"""

from __future__ import annotations

from typing import Callable

#: Citation by model or wrapper name (every built-in, wrapper and unrunnable listed system).
CITATIONS: dict[str, str] = {
    "gray": "floor baseline: GT L with zero chroma (vcbench)",
    "reinhard": "Reinhard, Ashikhmin, Gooch & Shirley, Color Transfer between Images, IEEE CG&A 2001",
    "welsh": "Welsh, Ashikhmin & Mueller, Transferring Color to Greyscale Images, SIGGRAPH 2002",
    "propagate": "optical-flow colour propagation from the first frame, Welsh et al. 2002 refill (vcbench baseline)",
    "devc": "Zhang, He, Liao, Sander et al., Deep Exemplar-based Video Colorization, CVPR 2019",
    "zhang16": "Zhang, Isola & Efros, Colorful Image Colorization, ECCV 2016",
    "zhang17": "Zhang, Zhu, Isola, Geng, Lin, Yu & Efros, Real-Time User-Guided Image Colorization with Learned "
               "Deep Priors, SIGGRAPH 2017",
    "instcolor": "Su, Chu & Huang, Instance-aware Image Colorization, CVPR 2020",
    "tcvc": "Liu, Zhao, Chan, Wang, Loy, Qiao & Dong, Temporally Consistent Video Colorization with Deep Feature "
            "Propagation and Self-regularization Learning, arXiv:2110.04562, 2021",
    "dvp": "Lei, Xing & Chen, Blind Video Temporal Consistency via Deep Video Prior, NeurIPS 2020",
    "lai18": "Lai, Huang, Wang, Shechtman, Yumer & Yang, Learning Blind Video Temporal Consistency, ECCV 2018",
    "he18": "He et al. 2018, Deep Exemplar-based Colorization (msracver/Deep-Exemplar-based-Colorization)",
    "meyer18": "Meyer et al. 2018, Deep Video Color Propagation (BMVC)",
}


def citation(name: str, plugin: Callable[[str], str] | None = None) -> str:
    """The citation of a model name (`BASE+WRAPPER` cites both, base first); a name the table lacks
    asks `plugin(name)` when given; "" when nothing is known (old runs of an uninstalled plug-in)."""
    parts = [CITATIONS.get(part) or (plugin(part) if plugin is not None else "") for part in name.split("+")]
    return "; ".join(p for p in parts if p)
