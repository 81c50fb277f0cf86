"""The paper this library implements, cited in every generated card."""

PAPER_TITLE = "Contextualization Distillation from Large Language Model for Knowledge Graph Completion"
PAPER_URL = "https://arxiv.org/abs/2402.01729"
PAPER_BIBTEX = """@inproceedings{li2024contextualization,
  title     = {Contextualization Distillation from Large Language Model for Knowledge Graph Completion},
  author    = {Li, Dawei and Tan, Zhen and Chen, Tianlong and Liu, Huan},
  booktitle = {Findings of the Association for Computational Linguistics: EACL 2024},
  year      = {2024},
  eprint    = {2402.01729},
  archivePrefix = {arXiv}
}"""
