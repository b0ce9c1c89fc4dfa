"""Renders the README's science results from benchmarks/results/*.json, so no number is typed by hand.

    python benchmarks/readme_tables.py   # rewrites the science-results block, its summary rows and the main
                                         # job's printed output
"""

from __future__ import annotations

import json
import re

from common import RESULTS, ROOT

BEGIN, END = "<!-- science-results:begin (benchmarks/readme_tables.py) -->", "<!-- science-results:end -->"
MAIN_JOB = "<!-- main-job-output: every line pipeline.json's run printed (benchmarks/readme_tables.py) -->"


def load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def ci(summary: dict, key: str) -> str:
    if key not in summary:
        return "not measured"
    return f"{summary[key]:.3f} [{summary[key + '_ci_low']:.3f}, {summary[key + '_ci_high']:.3f}]"


def machine_line(result: dict, file: str) -> str:
    m = result["machine"]
    busy = max((m.get("load_average_at_start") or [0])[0], (m.get("load_average_at_end") or [0])[0]) > m["cores"]
    note = (" — the machine was shared with other jobs (load above its core count), so absolute times are "
            "inflated and only same-process ratios compare" if busy else "")
    return (f"Machine: {m['cores']} cores, {m['cpu']}, GPU {m['gpu'] or 'none'}, torch {m['torch']} with "
            f"{m.get('torch_threads')} threads; load average (1/5/15 min) {m.get('load_average_at_start')} at the "
            f"start and {m.get('load_average_at_end')} at the end{note} (`{file}`).")


def cell(scores: dict) -> str:
    return f"{scores['recall@1']['mean']:.3f} ± {scores['recall@1']['std']:.3f} / {scores['map@r']['mean']:.3f}"


def scored_rows(result: dict) -> list[tuple[str, int, str, list[str]]]:
    """(row title, seeds, summary-key prefix, verticals left out) for each label a unified.py result file scored,
    the test split's first and then the unseen catalog's."""
    rows = []
    for name, data in result["datasets"].items():
        prefixes = ["", "articleType."] if name == "fashion-products" else ["synthetic."]
        rows += [(f"{name} · `{label}`", data["seeds"], prefix, data["degenerate_verticals"][label])
                 for label, prefix in zip(data["labels"], prefixes, strict=False)]
        if data.get("unseen_degenerate_verticals"):
            unseen = f"{name} models on the unseen catalog ({data['unseen_test_images']:,} images)"
            rows += [(f"{unseen} · `{label}`", data["seeds"], prefix, data["unseen_degenerate_verticals"][label])
                     for label, prefix in zip(data["labels"], ["unseen.", "unseen.articleType."], strict=False)]
    return rows


def unified_section() -> list[str]:
    result = load("unified")
    s, settings = result["summary"], result["settings"]
    if not all("labels" in data for data in result["datasets"].values()):
        return ["### Unified embedding vs specialists vs all-in-one (`benchmarks/unified.py`)", "",
                "`unified.json` predates the honest summary (pooled Recall@1, paired CIs, single-class verticals "
                "left out): not regenerated in this run.", ""]
    share, factor = settings.get("generalist_share", 0), settings["distill_factor"]
    rate = f" at learning rate {settings['specialist_lr']:g}" if settings.get("specialist_lr") else ""
    teachers = (f"a generalist over every vertical for {share:g} of the teachers' V×S triplet steps, then each "
                f"specialist fine-tuned from it{rate} for the rest" if share
                else "specialists from scratch, V×S in all")
    student = (f"L2 regression plus {settings['distill_triplet_weight']:g} × triplet loss"
               if settings.get("distill_triplet_weight") else "L2 regression")
    matched_budget = (f"; all-in-one matched {1 + factor}×V×S, the unified system's whole budget"
                      if "unified_over_all_in_one_matched" in s else "; no matched-budget all-in-one in this run")
    out = ["### Unified embedding vs specialists vs all-in-one (`benchmarks/unified.py`)", "",
           f"resnet18 from scratch, {settings['image_size']} px, P×K 8×4, {settings['steps_per_vertical']} steps "
           f"per vertical S. Teachers: {teachers}; all-in-one V×S; unified student {factor}×V×S steps of "
           f"{student}{', from the generalist' if share else ''}{matched_budget} (budgets in the script's "
           f"docstring); students: {', '.join(settings['students'])}. "
           f"Ratios are means of paired per-seed ratios of pooled Recall@1 (all queries of the scored verticals "
           f"together) with 95 % t intervals (`unified.json`).", "",
           "| dataset · label | seeds | unified / all-in-one (target > 1, CI low ≥ 1) | unified / specialists "
           "(target ≥ 0.99) | unified / all-in-one matched | left out (single-class test gallery) |",
           "|---|---|---|---|---|---|"]
    for title, seeds, prefix, left_out in scored_rows(result):
        matched = ci(s, prefix + "unified_over_all_in_one_matched") \
            if prefix + "unified_over_all_in_one_matched" in s else "not run"
        out.append(f"| {title} | {seeds} | {ci(s, prefix + 'unified_over_all_in_one')} | "
                   f"{ci(s, prefix + 'unified_over_specialists')} | {matched} | {', '.join(left_out) or 'none'} |")
    for name, data in result["datasets"].items():
        if data.get("unseen_degenerate_verticals"):
            out += ["", f"The unseen catalog: the {data['unseen_test_images']:,} images of `fashion-products-224` "
                    f"whose product ids are not in {name} and that are not near-duplicates (16 px grey thumbnails "
                    "within L2 1.0) of any of its images, byte-identical copies counted once; no model trains on "
                    "them. "
                    f"The {name} test split has {data['test_images']} images, so the unseen rows carry far less of the "
                    "evaluation's own noise (`unified.json`)."]
    extra = sorted({k.split(".")[-1] for k in s if re.search(r"unified_[a-z_]+_over_unified$", k)})
    for key in extra:
        out.append("")
        out.append(f"Student recipe `{key.removeprefix('unified_').removesuffix('_over_unified')}` over the default "
                   f"student, same seeds: fashion-products {ci(s, key)}, articleType {ci(s, 'articleType.' + key)}, "
                   f"synthetic {ci(s, 'synthetic.' + key)} (`unified.json`).")
    out += ["", f"Parameters unified / specialists: {s.get('params_ratio_unified_over_specialists', 'n/a')} "
            f"(fashion-products), {s.get('synthetic.params_ratio_unified_over_specialists', 'n/a')} (synthetic); "
            f"latency unified / routed specialists (timed in alternation): "
            f"{s.get('latency_ratio_unified_over_specialists', 'n/a')} (`unified.json`).", ""]
    for name, data in result["datasets"].items():
        for label, table in data["tables"].items():
            systems = list(table)
            out += [f"**{name}**, relevant = same `{label}` (Recall@1 mean ± std / MAP@R mean, queries, "
                    f"{data['seeds']} seeds, test split; `unified.json`)", "",
                    "| vertical | queries | " + " | ".join(systems) + " |", "|---" * (len(systems) + 2) + "|"]
            for vertical in table[systems[0]]:
                cells = [cell(table[system][vertical]) for system in systems]
                left = " (left out)" if vertical in data["degenerate_verticals"][label] else ""
                out.append(f"| {vertical}{left} | {table[systems[0]][vertical]['queries']['mean']:.0f} | "
                           + " | ".join(cells) + " |")
            out.append("")
    out += [machine_line(result, "unified.json"), ""]
    return out


def unlabelled_section() -> list[str]:
    """The student distilled on unlabelled catalog images too, against the default student of the same seeds."""
    if not (RESULTS / "unified_unlabelled_32px.json").is_file():
        return []
    result = load("unified_unlabelled_32px")
    s, data = result["summary"], result["datasets"]["fashion-products"]
    key = "unified_unlabelled_images_over_unified"
    pooled = [f"{system} {s[f'pooled_recall@1.{system}']:.3f}" for system in
              ("unified", "unified_unlabelled_images", "specialists", "all_in_one")]
    return ["#### Distilling on unlabelled catalog images too (`unified_unlabelled_32px.json`)", "",
            f"Same teachers, same seeds, same F×V×S student steps; the second student also regresses the teachers' "
            f"embeddings of unlabelled catalog images (the other images of `fashion-products-224`, their labels "
            f"unused, every id of fashion-products and every near-duplicate of its images left out). "
            f"{data['seeds']} seeds, fashion-products. Student with unlabelled images / default student: "
            f"training label {ci(s, key)}, articleType {ci(s, 'articleType.' + key)}; it over the all-in-one: "
            f"{ci(s, 'unified_unlabelled_images_over_all_in_one')}. Pooled Recall@1 on the training label: "
            f"{', '.join(pooled)} (`unified_unlabelled_32px.json`).", ""]


def resolution_unified_section(file: str = "unified_32px") -> list[str]:
    """The product's recipe with every system at another input size (the one every recipe was compared at),
    beside the main run."""
    if not (RESULTS / f"{file}.json").is_file():
        return []
    result = load(file)
    s, size = result["summary"], result["settings"]["image_size"]
    return [f"#### Every system at {size} px (`{file}.json`)", "",
            f"`benchmarks/unified.py --image-size {size}`: the same recipe, step budgets, pairing and summary as "
            f"above, every system at {size} px.", "",
            "| dataset · label | seeds | unified / all-in-one | unified / specialists | unified / all-in-one matched |",
            "|---|---|---|---|---|",
            *[f"| {name} | {seeds} | {ci(s, prefix + 'unified_over_all_in_one')} | "
              f"{ci(s, prefix + 'unified_over_specialists')} | {ci(s, prefix + 'unified_over_all_in_one_matched')} |"
              for name, seeds, prefix, _ in scored_rows(result)],
            "", "Pooled Recall@1 by the training label (test split): " + "; ".join(
                f"{prefix.rstrip('.') or 'fashion-products'} " + ", ".join(
                    f"{system} {s[f'{prefix}pooled_recall@1.{system}']:.3f}"
                    for system in ("unified", "specialists", "all_in_one", "all_in_one_matched"))
                for prefix in ("", "synthetic.") if f"{prefix}pooled_recall@1.unified" in s) + f" (`{file}.json`).",
            "", machine_line(result, f"{file}.json"), ""]


def teacher_groups_section(file: str = "unified_teacher_groups") -> list[str]:
    """The product's recipe beside a student of teachers of two verticals each, same seeds, one process each."""
    if not (RESULTS / f"{file}.json").is_file():
        return []
    result = load(file)
    s, settings, gpu = result["summary"], result["settings"], result["machine"]["gpu"]
    ratios = ("unified_over_all_in_one", "unified_over_specialists", "unified_pair_teachers_over_all_in_one",
              "unified_pair_teachers_over_specialists", "unified_pair_teachers_over_unified")
    systems = ("specialists", "pair_teachers", "unified", "unified_pair_teachers", "all_in_one", "all_in_one_matched")
    return [f"#### Teachers of one vertical or of two (`{file}.json`)", "",
            f"`benchmarks/unified.py --students default,pair_teachers --device {settings['device']}`"
            + (f" on an {gpu} (`benchmarks/device/`)" if gpu else "")
            + f": the product's recipe, budgets, pairing and summary as above, {settings['image_size']} px, and a "
            "second student (pair teachers) distilled for the same F×V×S steps from teachers of two alphabetically "
            "adjacent verticals each (the size the 48 px sweet spot favours), fine-tuned from the same generalist "
            "for 2×(1 − g)×S steps each, so that the teachers' total is unchanged"
            + ("; cuDNN convolutions in TF32, torch's default on a GPU, for every system alike" if gpu else "")
            + f". The seed count was fixed before the run (`{file}.json`).", "",
            "| dataset · label | seeds | " + " | ".join(r.replace("unified_pair_teachers", "pair-teacher unified")
                                                     .replace("all_in_one", "all-in-one").replace("_over_", " / ")
                                                     for r in ratios)
            + " |", "|---|---|" + "---|" * len(ratios),
            *[f"| {name} | {seeds} | " + " | ".join(ci(s, prefix + r) for r in ratios) + " |"
              for name, seeds, prefix, _ in scored_rows(result)],
            "", "Pooled Recall@1 by the training label: " + "; ".join(
                f"{title} " + ", ".join(f"{system} {s[f'{prefix}pooled_recall@1.{system}']:.3f}" for system in systems)
                for title, prefix in (("test split", ""), ("unseen catalog", "unseen."))) + f" (`{file}.json`).",
            "", machine_line(result, f"{file}.json"), ""]


def group_sizes(summary: dict, prefix: str) -> list[int]:
    """The group sizes a ``sweet_spot*.json`` scored under ``prefix`` (``synthetic.``, ``unseen.``, ...)."""
    return sorted(int(k.rsplit("_", 1)[1]) for k in summary if k.startswith(f"{prefix}pooled_recall@1.size_"))


def sweet_spot_section(file: str) -> list[str]:
    """Song et al.'s grouping study: every group size at the same V×S steps, over both extremes."""
    if not (RESULTS / f"{file}.json").is_file():
        return []
    result = load(file)
    s, settings = result["summary"], result["settings"]
    out = [f"### How many verticals per triplet model, {settings['image_size']} px (`benchmarks/sweet_spot.py`)", "",
           f"For each group size g the verticals (alphabetical) are cut into contiguous groups of g and each group "
           f"gets one triplet model from scratch for |group|×S steps, S = {settings['steps_per_vertical']}: every "
           f"size costs V×S steps in all; size 1 is the specialists, the largest size the all-in-one model. "
           f"resnet18, {settings['image_size']} px, P×K {settings['batch'].replace('x', '×')}; each vertical scored "
           "with its group's model in its own test gallery; pooled Recall@1 (all queries of the scored verticals "
           f"together) and paired per-seed ratios with 95 % t intervals (`{file}.json`).", "",
           f"![pooled Recall@1 of each group size over the all-in-one model](benchmarks/results/{file}.png)", ""]
    cases = []  # (column title, summary-key prefix, verticals left out)
    for name, data in result["datasets"].items():
        prefixes = ["", "articleType."] if name == "fashion-products" else ["synthetic."]
        cases += [(f"{name} · `{label}`", prefix, data["degenerate_verticals"][label])
                  for label, prefix in zip(data["labels"], prefixes, strict=False)]
        if data.get("unseen_degenerate_verticals"):
            cases += [(f"its models on the unseen catalog · `{label}`", "unseen." + prefix,
                       data["unseen_degenerate_verticals"][label])
                      for label, prefix in zip(data["labels"], prefixes, strict=False)]
    seeds = ", ".join(f"{name} {data['seeds']}" for name, data in result["datasets"].items())
    out += [f"Pooled Recall@1 of each size, and over the all-in-one [95 % CI]; seeds: {seeds} (`{file}.json`).",
            "", "| verticals per model | " + " | ".join(title for title, _, _ in cases) + " |",
            "|---" * (len(cases) + 1) + "|"]
    sizes = sorted({size for _, prefix, _ in cases for size in group_sizes(s, prefix)})
    for g in sizes:
        cells = []
        for _, prefix, _ in cases:
            key, ratio = f"{prefix}pooled_recall@1.size_{g}", f"{prefix}size_{g}_over_all_in_one"
            cells.append("" if key not in s else f"{s[key]:.3f}" + (f" ({ci(s, ratio)})" if ratio in s else ""))
        out.append(f"| {g} | " + " | ".join(cells) + " |")
    best = []
    for title, prefix, _ in cases:
        size = s[prefix + "best_size"]
        over_all = ci(s, prefix + "best_over_all_in_one") if f"{prefix}size_{size}_over_all_in_one" in s else "—"
        over_one = ci(s, f"{prefix}size_{size}_over_specialists") if f"{prefix}size_{size}_over_specialists" in s \
            else "—"
        best.append(f"{title}: size {size}, {over_all} / {over_one}")
    left_out = [f"{title}: {', '.join(left) or 'none'}" for title, _, left in cases]
    out += ["", f"Best size, picked on these same scores (so an upper estimate), over the all-in-one / over the "
            f"specialists: {'; '.join(best)}. Left out (single-class test gallery): {'; '.join(left_out)} "
            f"(`{file}.json`).", ""]
    return out + [machine_line(result, f"{file}.json"), ""]


def attributes_section() -> list[str]:
    result = load("attributes")
    s, settings = result["summary"], result["settings"]
    out = ["### Progressive attribute branches vs per-attribute vs multi-label (`benchmarks/attributes.py`)", ""]
    if "progressive_over_multilabel_worst" not in s:
        return out + ["`attributes.json` predates the seeded, worst-case summary: not regenerated in this run.", ""]
    batches = ("every phase's batches drawn from the rows labelled for the heads it trains"
               if settings.get("batches") == "labelled_rows" else "batches drawn from every training row")
    share = settings.get("trunk_generalist_share", 0)
    trunk = (f"the product's unified trunk (a generalist on {share} of the teachers' steps, specialists fine-tuned "
             f"from it at {settings['trunk_specialist_lr']}, the student distilled from the generalist)" if share
             else "a unified trunk distilled from specialists trained from scratch")
    out += [f"{settings['seeds']} seeds, {settings['steps_per_attribute']} steps per attribute (N×S optimiser steps "
            f"per system; how many each head sees is below the tables), {batches}, {trunk}, "
            f"{settings['base_steps_per_vertical']} steps per vertical, {settings['image_size']} px, "
            f"progressive and per-attribute branches pooling layer2 under {settings.get('local_maps', 0)} heatmaps "
            "each (`attributes.json`).",
            "",
            f"| summary (missing rates 0/50/80 % on {' and '.join(result['datasets'])}) | ratio "
            "[95 % CI] | where |",
            "|---|---|---|"]
    for key in ("progressive_over_multilabel", "progressive_over_per_attribute"):
        out.append(f"| {key.replace('_', ' ')}, worst case (target ≥ 1) | {ci(s, key + '_worst')} | "
                   f"{s[key + '_worst_case']} |")
    for key in ("progressive_over_multilabel", "progressive_over_per_attribute"):
        out.append(f"| {key.replace('_', ' ')}, pooled: per seed the mean of every dataset's and missing rate's ratio "
                   f"| {ci(s, key + '_pooled')} | all |")
    out += ["", f"Channel-wise attention in the branches, on / off (mean over datasets and missing rates): "
            f"{s.get('attention_over_plain', 'not measured')} (`attributes.json`).", "",
            "| dataset | missing | progressive / multi-label | progressive / per-attribute | attention / plain |",
            "|---|---|---|---|---|"]
    for name, data in result["datasets"].items():
        ratios = data["ratios_by_missing_rate"]
        for rate in ("0.0", "0.5", "0.8"):
            out.append(f"| {name} | {float(rate):.0%} | {ci(ratios, rate + '.progressive_over_multilabel')} | "
                       f"{ci(ratios, rate + '.progressive_over_per_attribute')} | "
                       f"{ci(ratios, rate + '.attention_over_plain')} |")
    out.append("")
    for name, data in result["datasets"].items():
        lat, params = data["latency_ms"], data["params"]
        out.append(f"{name}: parameters progressive {params['progressive'] / 1e6:.2f} M, per-attribute together "
                   f"{params['per_attribute'] / 1e6:.2f} M, multi-label {params['multilabel'] / 1e6:.2f} M; "
                   f"single-image latency (alternating) progressive {lat['progressive']:.2f} ms, embedding only "
                   f"{lat['embedding_only']:.2f} ms, per-attribute {lat['per_attribute']:.2f} ms, multi-label "
                   f"{lat['multilabel']:.2f} ms (`attributes.json`).")
    return out + ["", head_steps_line(result), "", machine_line(result, "attributes.json"), ""]


def head_steps_line(result: dict) -> str:
    """How many optimiser steps each head's loss counts in, per system, from the benchmark's own schedule."""
    from attributes import schedule  # the benchmark's schedule (imports torch): only this section needs it

    from apparel.train.attributes import steps_seen_by_head

    settings = result["settings"]
    plan = schedule(settings["steps_per_attribute"], seed=0)
    s, b, f, final = settings["steps_per_attribute"], plan.branch_steps, plan.finetune_steps, plan.final_steps_per_head
    counts = []
    for name, data in result["datasets"].items():
        n = len(data["by_missing_rate_per_seed"][0]["0.0"]["progressive"])
        seen = steps_seen_by_head(plan, n)
        counts.append(f"{name} (N = {n}) {', '.join(map(str, seen))} (its trunk {n * (f + final)}), multi-label "
                      f"{n * s}")
    return (f"Optimiser steps in which each head's loss counts, S = {s} (`steps_seen_by_head`): progressive, "
            f"heads in the order they are added, each new branch {b} steps alone, then {f} of fine-tuning after its "
            f"own and each later branch, then all N×{final} end-to-end steps; one model per attribute {s} on its own "
            f"trunk; multi-label every head in every step. {'; '.join(counts)}. These count steps, not labels: at "
            "80 % missing a one-vertical head's label is on two or three rows of a 32-row joint batch, while every "
            "row of its own model's batches carries it (`attributes.json`).")


def attribute_recipes_section() -> list[str]:
    """The embedding anchor and a linear probe per branch, against the same seeds' baselines."""
    if not (RESULTS / "attributes_recipes.json").is_file():
        return []
    result = load("attributes_recipes")
    settings = result["settings"]
    rates = [f"{r:.0%}" for r in settings["missing_rates"]]
    out = ["#### Recipes for the attribute heads: the embedding anchor, a linear probe per branch "
           "(`benchmarks/attributes_recipes.py`)", "",
           f"{settings['seeds']} seeds, missing rates {' and '.join(rates)}, attributes.py's budgets; every system "
           "of a seed draws the same batches and flips (systems in the script's docstring). Mean test attribute "
           "accuracy ratios [95 % CI], and Recall@1 of the trunk each system leaves (by the training label, pooled "
           "over queries) next to the unified trunk's (`attributes_recipes.json`).", "",
           "| dataset | missing | anchored / free progressive | probe / plain progressive | progressive / "
           "multi-label anchored | Recall@1 unified → progressive anchored, free; multi-label free, anchored |",
           "|---|---|---|---|---|---|"]
    for name, data in result["datasets"].items():
        ratios = data["ratios"]
        for rate in map(str, settings["missing_rates"]):
            recall = ", ".join(f"{ratios[f'{rate}.recall@1_{system}']:.3f}" for system in
                               ("progressive", "progressive_free"))
            recall += "; " + ", ".join(f"{ratios[f'{rate}.recall@1_{system}']:.3f}" for system in
                                       ("multilabel", "multilabel_anchored"))
            out.append(f"| {name} | {float(rate):.0%} | {ci(ratios, rate + '.progressive_over_progressive_free')} | "
                       f"{ci(ratios, rate + '.progressive_probe_over_progressive')} | "
                       f"{ci(ratios, rate + '.progressive_over_multilabel_anchored')} | "
                       f"{data['unified_recall@1']:.3f} → {recall} |")
    return out + ["", machine_line(result, "attributes_recipes.json"), ""]


def paired_table(file: str, title: str, columns: tuple[str, ...]) -> list[str]:
    """One ``attributes_recipes.py --result FILE`` run as a table of its paired ratios [95 % CI]."""
    if not (RESULTS / f"{file}.json").is_file():
        return []
    result = load(file)
    settings = result["settings"]
    trunk = "the product's unified trunk (`--trunk product`), " if settings.get("trunk") == "product" else ""
    out = [f"#### {title} (`{file}.json`)", "",
           f"`benchmarks/attributes_recipes.py --result {file}`, {settings['seeds']} seeds, {trunk}"
           f"{settings.get('image_size', 32)} px, same budgets and pairing as above. Mean test attribute accuracy "
           "ratios [95 % CI].", "",
           "| dataset | missing | " + " | ".join(c.replace("_over_", " / ").replace("_", " ") for c in columns) + " |",
           "|---|---|" + "---|" * len(columns)]
    for name, data in result["datasets"].items():
        for rate in map(str, settings["missing_rates"]):
            out.append(f"| {name} | {float(rate):.0%} | " + " | ".join(ci(data["ratios"], f"{rate}.{c}")
                                                                      for c in columns) + " |")
    return out + ["", machine_line(result, f"{file}.json"), ""]


def balanced_heads_section() -> list[str]:
    """Joint batches with an equal share per head, against the same seeds' usual batches."""
    return paired_table("attributes_balanced", "Balanced heads: an equal share of each joint batch per head",
                        ("progressive_balanced_over_progressive", "multilabel_balanced_over_multilabel",
                         "progressive_balanced_over_multilabel_balanced", "progressive_balanced_over_per_attribute"))


def branch_init_section() -> list[str]:
    """What a new progressive branch copies from the latest one, against the paper's rule (copy all)."""
    return paired_table("attributes_branch_init",
                        "Branch initialisation: copy the latest branch, its features only, or nothing",
                        ("progressive_features_over_progressive", "progressive_fresh_over_progressive",
                         "progressive_fresh_over_multilabel", "progressive_fresh_over_per_attribute"))


def trunk_steps_section() -> list[str]:
    """Branch-alone steps on a frozen trunk against end-to-end steps, and the multi-label model held to the
    progressive trunk's steps."""
    return paired_table("attributes_trunk_steps", "Trunk steps: short branch-alone phases, and the multi-label "
                        "model held to the progressive trunk's steps",
                        ("progressive_short_alone_over_progressive", "multilabel_trunk_steps_over_multilabel",
                         "progressive_over_multilabel_trunk_steps", "progressive_short_alone_over_multilabel",
                         "progressive_short_alone_over_per_attribute"))


def dynamics_section() -> list[str]:
    """What separates the progressive system from the multi-label one: optimiser, branch shape, schedule."""
    return paired_table("attributes_dynamics", "What separates progressive from multi-label: one optimiser, "
                        "linear branches, every branch from the start, wider branches",
                        ("progressive_over_multilabel", "progressive_one_optimizer_over_progressive",
                         "progressive_linear_over_progressive", "joint_branches_over_progressive",
                         "progressive_wide_over_progressive", "joint_branches_over_multilabel"))


def branch_parent_section() -> list[str]:
    """A new branch started from one trained on its rows, against the latest branch (the paper's rule)."""
    return paired_table("attributes_branch_parent", "Branch parent: the latest branch, or the latest one trained "
                        "on the new attribute's rows",
                        ("progressive_overlap_over_progressive_short_alone", "progressive_short_alone_over_multilabel",
                         "progressive_overlap_over_multilabel"))


def null_section() -> list[str]:
    """The multi-label model against itself under another seed: the ratios the benchmark gives by chance."""
    return paired_table("attributes_null", "The null: the multi-label model against itself under another seed",
                        ("multilabel_reseeded_over_multilabel",))


def resolution_section() -> list[str]:
    """The product's schedule against the multi-label model at the product's own input size."""
    return paired_table("attributes_resolution", "Resolution: progressive against multi-label at the product's 48 px",
                        ("progressive_short_alone_over_multilabel",))


def local_section() -> list[str]:
    """Branches that also pool the mid-level map where their own heatmaps point, and the multi-label control."""
    return paired_table("attributes_local", "Local branches: each branch pools layer2 where its own heatmaps point",
                        ("progressive_local_over_multilabel", "progressive_local_over_progressive_short_alone",
                         "multilabel_local_over_multilabel", "progressive_local_over_multilabel_local"))


def balanced_product_section() -> list[str]:
    """Balanced joint batches for the product's progressive system, on the product's trunk."""
    return paired_table("attributes_balanced_product", "Balanced heads on the product's trunk and branches",
                        ("progressive_local_balanced_over_progressive_local",
                         "progressive_local_over_per_attribute_local",
                         "progressive_local_balanced_over_per_attribute_local"))


def head_floor_section() -> list[str]:
    """Branches that step only once their head has met a floor of labels, against stepping on every batch."""
    return paired_table("attributes_head_floor", "A floor of labels per branch step, on the product's trunk and "
                        "branches", ("progressive_local_floor16_over_progressive_local",
                                     "progressive_local_floor32_over_progressive_local",
                                     "progressive_local_over_per_attribute_local",
                                     "progressive_local_floor16_over_per_attribute_local"))


def frozen_trunk_section() -> list[str]:
    """One model per attribute with its trunk frozen: what a trunk of its own gives each head."""
    return paired_table("attributes_frozen_trunk", "One model per attribute on a frozen trunk",
                        ("per_attribute_local_frozen_over_per_attribute_local",
                         "progressive_local_over_per_attribute_local",
                         "progressive_local_over_per_attribute_local_frozen"))


def branch_adapter_section() -> list[str]:
    """A trunk-stage adapter per branch, for progressive and for one model per attribute."""
    return paired_table("attributes_branch_adapter", "A trunk stage of each head's own (branch adapters)",
                        ("progressive_local_adapter_over_progressive_local",
                         "per_attribute_local_adapter_over_per_attribute_local",
                         "progressive_local_over_per_attribute_local",
                         "progressive_local_adapter_over_per_attribute_local_adapter"))


def landmarks_section() -> list[str]:
    result = load("landmarks")
    s, settings, params = result["summary"], result["settings"], result["params"]
    systems = list(result["mean_accuracy_per_seed"])
    seeds = "; ".join(" / ".join(f"{result['mean_accuracy_per_seed'][n][i]:.3f}" for n in systems)
                      for i in range(settings["seeds"]))
    out = ["### Landmark-pooled local branch (FashionNet) vs global features alone (`benchmarks/landmarks.py`)", "",
           f"Synthetic catalog only (the one catalog with landmark labels), {settings['seeds']} seeds, "
           f"{settings['image_size']} px, local branch on {settings['local_stage']}; every system from one unified "
           f"trunk ({settings['base_steps_per_vertical']} steps per vertical), {settings['steps_per_attribute']} "
           "steps per attribute (N×S joint steps each on the same batches and flips; the landmark system adds the "
           "masked landmark loss, the control `local_unsupervised` has its network without that loss; budgets in "
           "the script's docstring). Ratios are means of paired per-seed ratios of mean test accuracy with 95 % t "
           "intervals (`landmarks.json`).", "",
           "| ratio of mean attribute accuracy | mean [95 % CI] |", "|---|---|"]
    for key in ("landmark_over_global", "local_unsupervised_over_global", "landmark_over_local_unsupervised"):
        out.append(f"| {key.replace('_over_', ' / ').replace('_', ' ')} | {ci(s, key)} |")
    errors = ", ".join(f"{k.removeprefix('landmark_error_test_').replace('_', ' ')} {v:.3f}" for k, v in s.items()
                       if k.startswith("landmark_error_test_"))
    out += ["", f"Mean accuracy per seed ({' / '.join(systems)}): {seeds}. Test landmark error (mean distance, "
            f"fraction of the image side): {errors}. Parameters landmark / global "
            f"{s['params_ratio_landmark_over_global']:.3f} ({params['landmark'] / 1e6:.2f} M vs "
            f"{params['global'] / 1e6:.2f} M); single-image latency landmark / global (alternating) "
            f"{s['latency_ratio_landmark_over_global']:.3f} (`landmarks.json`).", "",
            "| attribute | " + " | ".join(systems) + " |", "|---" * (len(systems) + 1) + "|"]
    for name, scores in result["accuracy_by_attribute"].items():
        out.append(f"| {name} | " + " | ".join(f"{scores[n]:.3f}" for n in systems) + " |")
    return out + ["", machine_line(result, "landmarks.json"), ""]


def ingest_section() -> list[str]:
    result = load("ingest")
    s = result["summary"]
    if "decoded_images_per_s" not in s:
        return []
    c = result["counts"]
    return ["### Ingest (`benchmarks/ingest.py`)", "",
            f"{s['decoded_images_per_s']:,.0f} images decoded per second ({c['decoded']} images opened and decoded; "
            f"{c['unmapped_never_opened']} rows of unmapped categories quarantined without being opened are not "
            f"counted); an unchanged re-ingest is {s['rerun_speedup']}× faster (`ingest.json`).", "",
            machine_line(result, "ingest.json"), ""]


def summary_rows() -> list[str]:
    """The rows of the README's results table that come from these files."""
    headline, attributes, ingest = load("unified"), load("attributes")["summary"], load("ingest")["summary"]
    unified = headline["summary"] if "unified_over_all_in_one_ci_low" in headline["summary"] else {}
    seeds = {name: data.get("seeds", 0) for name, data in headline["datasets"].items()}
    size = headline["settings"]["image_size"]
    rows = []
    if "decoded_images_per_s" in ingest:
        rows.append(f"| ingest of fashion-products | {ingest['decoded_images_per_s']:,.0f} images decoded/s; unchanged "
                    f"re-ingest {ingest['rerun_speedup']}× faster | `ingest.json` |")
    for key, target in (("unified_over_all_in_one", "> 1"), ("unified_over_specialists", "≥ 0.99")):
        rows.append(f"| {key.replace('_', ' ')}, pooled Recall@1 (target {target}), {size} px, 95 % CI | "
                    f"fashion-products (training label, {seeds.get('fashion-products', 0)} seeds) {ci(unified, key)}; "
                    f"articleType {ci(unified, 'articleType.' + key)}; "
                    + (f"its models on the unseen catalog (training label) {ci(unified, 'unseen.' + key)}; "
                       if "unseen." + key in unified else "")
                    + f"synthetic ({seeds.get('synthetic', 0)} seeds) {ci(unified, 'synthetic.' + key)} "
                    "| `unified.json` |")
    if (RESULTS / "unified_teacher_groups.json").is_file():
        groups = load("unified_teacher_groups")
        g, seeds_there = groups["summary"], groups["datasets"]["fashion-products"]["seeds"]
        rows.append(f"| the same recipe on an {groups['machine']['gpu'] or 'other machine'}, {seeds_there} seeds "
                    "(count fixed before the run), and a student of teachers of two verticals each, 95 % CI | "
                    f"unified over all-in-one (training label) {ci(g, 'unified_over_all_in_one')}, unseen catalog "
                    f"{ci(g, 'unseen.unified_over_all_in_one')}; over specialists {ci(g, 'unified_over_specialists')}; "
                    f"pair-teacher student over the default student: unseen catalog "
                    f"{ci(g, 'unseen.unified_pair_teachers_over_unified')}, test split "
                    f"{ci(g, 'unified_pair_teachers_over_unified')} | `unified_teacher_groups.json` |")
    if (RESULTS / "unified_32px.json").is_file():
        small = load("unified_32px")
        small_seeds = {name: data["seeds"] for name, data in small["datasets"].items()}
        for key in ("unified_over_all_in_one", "unified_over_specialists"):
            rows.append(f"| {key.replace('_', ' ')}, every system at 32 px (where the recipes were compared), 95 % CI "
                        f"| fashion-products (training label, {small_seeds.get('fashion-products', 0)} seeds) "
                        f"{ci(small['summary'], key)}; its models on the unseen catalog "
                        f"{ci(small['summary'], 'unseen.' + key)}; synthetic ({small_seeds.get('synthetic', 0)} seeds) "
                        f"{ci(small['summary'], 'synthetic.' + key)} | `unified_32px.json` |")
    for key in ("progressive_over_multilabel_worst", "progressive_over_per_attribute_worst"):
        if key in attributes:
            pooled = key.replace("_worst", "_pooled")
            rows.append(f"| {key.replace('_', ' ')} (target ≥ 1), accuracy | {ci(attributes, key)} "
                        f"({attributes[key + '_case']}); pooled over the six cases {ci(attributes, pooled)} "
                        "| `attributes.json` |")
    for file in ("sweet_spot", "sweet_spot_32px"):
        if not (RESULTS / f"{file}.json").is_file():
            continue
        result = load(file)
        spot, size = result["summary"], result["settings"]["image_size"]
        cases = [(name, prefix) for name, prefix in (("fashion-products' models on the unseen catalog", "unseen."),
                                                      ("synthetic", "synthetic.")) if prefix + "best_size" in spot]
        rows.append(f"| verticals per triplet model (sweet spot), {size} px, pooled Recall@1 of one model per vertical "
                    "over one model for all, 95 % CI | " + "; ".join(
                        f"{name} {ci(spot, prefix + 'size_1_over_all_in_one')}, best size {spot[prefix + 'best_size']} "
                        f"of {group_sizes(spot, prefix)[-1]}" for name, prefix in cases) + f" | `{file}.json` |")
    landmarks = load("landmarks")["summary"]
    rows.append(f"| landmark-pooled local branch over global features alone, mean attribute accuracy (synthetic), "
                f"95 % CI | {ci(landmarks, 'landmark_over_global')}; parameters "
                f"{landmarks['params_ratio_landmark_over_global']}×, latency "
                f"{landmarks['latency_ratio_landmark_over_global']}× | `landmarks.json` |")
    return rows


def replace_summary_rows(text: str) -> str:
    lines = text.split("\n")
    files = "ingest|unified|unified_teacher_groups|unified_32px|sweet_spot|sweet_spot_32px|attributes|landmarks"
    ours = [i for i, line in enumerate(lines) if re.match(rf"^\|.*\| `({files})\.json` \|$", line)]
    if not ours:
        return text
    return "\n".join(lines[: ours[0]] + summary_rows() + [line for i, line in enumerate(lines[ours[0]:], ours[0])
                                                           if i not in ours])


def replace_main_job_output(text: str) -> str:
    printed = "\n".join(load("pipeline")["printed"])
    block = re.compile(rf"{re.escape(MAIN_JOB)}\n```\n.*?\n```\n", re.S)
    text, replaced = block.subn(lambda _: f"{MAIN_JOB}\n```\n{printed}\n```\n", text)
    if not replaced:
        raise SystemExit(f"README.md has no '{MAIN_JOB}' marker followed by a code block")
    return text


def main() -> None:
    readme = ROOT / "README.md"
    text = replace_main_job_output(replace_summary_rows(readme.read_text()))
    block = "\n".join([BEGIN, "", *unified_section(), *unlabelled_section(), *resolution_unified_section(),
                       *teacher_groups_section(),
                       *sweet_spot_section("sweet_spot"), *sweet_spot_section("sweet_spot_32px"),
                       *attributes_section(), *attribute_recipes_section(),
                       *balanced_heads_section(), *branch_init_section(), *trunk_steps_section(),
                       *dynamics_section(), *branch_parent_section(), *null_section(), *resolution_section(),
                       *local_section(), *balanced_product_section(), *head_floor_section(), *frozen_trunk_section(),
                       *branch_adapter_section(),
                       *landmarks_section(), *ingest_section(), END])
    if BEGIN not in text:
        raise SystemExit(f"README.md has no '{BEGIN}' marker")
    head, rest = text.split(BEGIN, 1)
    readme.write_text(head + block + rest.split(END, 1)[1])


if __name__ == "__main__":
    main()
