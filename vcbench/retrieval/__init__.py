"""Reference retrieval: image descriptors, a faiss gallery index, and top-k references per clip."""

from __future__ import annotations

__all__ = ["retrieve_references"]


def __getattr__(name: str):
    if name == "retrieve_references":
        # lazy: PEP 562 export hub, so importing vcbench.retrieval.index does not pull in torch through the descriptors
        from vcbench.retrieval.topk import retrieve_references

        return retrieve_references
    raise AttributeError(name)
