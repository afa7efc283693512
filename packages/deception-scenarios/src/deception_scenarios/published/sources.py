"""Where each of the field's datasets comes from: what `deception scenarios` and `deception plugins` print."""

from __future__ import annotations

APOLLO_REPO = "github.com/ApolloResearch/deception-detection"

#: set or scenario name -> its source and citation, in one line
SOURCES = {
    "apollo_roleplaying": (f"Apollo Research, {APOLLO_REPO} data/roleplaying/dataset.yaml "
                           "(Goldowsky-Dill et al. 2025, arXiv:2502.03407)"),
    "apollo_instructed_pairs": (f"Apollo Research, {APOLLO_REPO} data/repe/true_false_facts.csv "
                                "(instructed pairs after Zou et al. 2023, arXiv:2310.01405)"),
    "ai_liar": ("How to Catch an AI Liar (Pacchiardi et al. 2023, arXiv:2309.15840), appendix F; "
                f"{APOLLO_REPO} data/how_to_catch_an_ai_liar/goal_directed_lying.json"),
    "liars_bench": ("Liars' Bench (Kretschmar et al. 2025, arXiv:2511.16035), Hugging Face dataset "
                    "Cadenza-Labs/liars-bench"),
    "roleplaying": ("Apollo-style role plays: a few built in, or any file in the format of "
                    f"{APOLLO_REPO} data/roleplaying/dataset.yaml (Goldowsky-Dill et al. 2025)"),
    "instructed_pairs": "generated here: capitals, sums, products and unit conversions",
}
