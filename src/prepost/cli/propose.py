"""Propose a dataset's pairing from its sample sheet (``prepost init``).

Given the samples of a GEO series (or the column names of a count table), find

- the patient id: a characteristic, or a pattern of the sample titles, whose values are shared
  by two (or a few) samples each;
- the timepoint: the field whose values split each patient's samples (every patient's samples
  carry different values), with each value placed as pre, post or on-treatment from its words;
- the response: a field whose values read as pCR/RD, R/NR, responder/non-responder...

and say why, with the values that could not be placed. Nothing is guessed silently: a choice
between equally good candidates, or a value no rule places, is written commented out with the
alternatives, so the config fails loudly until the user decides. The proposed rules are then
run through the workflow's own pairing (prepost.prepare.pairing.pair_samples) and the number of
complete pairs is reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from prepost.prepare.pairing import PairingError, pair_samples
from prepost.vocabulary import MIN_PAIRS

# Plain GEO sample fields that never hold a patient, timepoint or response (protocols, dates,
# contacts, file names). title, source_name_ch1, description and every characteristic stay.
_BOILERPLATE = re.compile(
    r"^(geo_accession|status|submission_date|last_update_date|type|channel_count|"
    r"organism_ch\d+|taxid_ch\d+|molecule_ch\d+|extract_protocol_ch\d+|label_ch\d+|"
    r"label_protocol_ch\d+|hyb_protocol|scan_protocol|data_processing(_\d+)?|platform_id|"
    r"contact_.*|supplementary_file(_\d+)?|data_row_count|relation(_\d+)?|growth_protocol_ch\d+|"
    r"treatment_protocol_ch\d+|instrument_model|library_.*|biomaterial_provider_ch\d+|"
    r"sample)$"
)
# Where each candidate comes from, best first when two are equivalent.
_KIND_RANK = {"characteristic": 0, "source": 1, "title": 2, "other": 3}
_ID_NAMES = re.compile(r"patient|subject|donor|individual|case|upin|\bpt\b|\bid\b|person|mouse|animal",
                       re.IGNORECASE)
_TIME_NAMES = re.compile(r"time|visit|stage|biopsy|before|after|pre|post|treat|acquisition|cycle|sampl",
                         re.IGNORECASE)
_RESPONSE_NAMES = re.compile(r"respon|pcr|outcome|remission|miller|payne|rcb|recist|benefit",
                             re.IGNORECASE)

# Patterns tried on the sample titles: the first group is the patient id.
TITLE_PATIENT_PATTERNS = (
    r"^([A-Za-z]*\d+)[_\s.-]",
    r"(?i)(?:patient|pt|pat|case|subject|donor)[\s_#.-]*([A-Za-z]?\d+)",
    r"[_\s.-]([A-Za-z]*\d+)$",
    r"^([^\W_]+)[_\s.-]",
    r"[_\s.-]([^\W_]+)$",
    r"^\D*(\d+)",
)
# Patterns tried on the titles for a timepoint token (a first or last word).
TITLE_TIMEPOINT_PATTERNS = (r"[_\s.-]([^\W_]+)$", r"^([^\W_]+)[_\s.-]")

# Words that place a timepoint value (matched as whole words of the lower-cased value).
PRE_WORDS = {"pre", "before", "baseline", "diagnosis", "diagnostic", "pretreatment", "untreated",
             "naive", "screening", "prior", "t0", "day0", "prechemo", "pretherapy"}
POST_WORDS = {"post", "after", "surgery", "surgical", "resection", "posttreatment", "mastectomy",
              "excision", "operative", "residual", "postchemo", "posttherapy", "lumpectomy"}
ON_WORDS = {"on", "during", "cycle", "mid", "midpoint", "intermediate", "ontreatment", "early"}
# Whole values that are abbreviations (never read inside free text: "or" is a common word).
TIMEPOINT_ABBREVIATIONS = {"bl": "pre", "base": "pre", "or": "post", "sx": "post", "eot": "post",
                           "pre": "pre", "post": "post", "on": "on"}
_WHY = {"pre": "before treatment", "post": "after treatment", "on": "on treatment"}

# Whole response values (lower case, without spaces, dashes and underscores).
RESPONDER_VALUES = {"pcr", "r", "responder", "responders", "response", "sensitive",
                    "completeresponse", "pathologiccompleteresponse", "pathologicalcompleteresponse",
                    "cr", "yes"}
NON_RESPONDER_VALUES = {"rd", "nr", "nonresponder", "nonresponders", "noresponse", "resistant",
                        "residualdisease", "nopcr", "npcr", "nonpcr", "no"}
UNKNOWN_VALUES = {"na", "n/a", "unknown", "nd", "ne", "notevaluable", "notavailable", "missing", "--"}
RECIST = {"pr": "responder", "sd": "non_responder", "pd": "non_responder"}


@dataclass
class Candidate:
    """One way of reading a sample field: a field, optionally through a regex."""

    field: str
    regex: str | None
    values: pd.Series  # by sample, NaN where the field is empty or the regex does not match
    kind: str

    @property
    def label(self) -> str:
        return f"'{self.field}'" + (f" through /{self.regex}/" if self.regex else "")

    def rule(self) -> dict:
        return {"field": self.field, **({"regex": self.regex} if self.regex else {})}


@dataclass
class Choice:
    """What init proposes for one pairing key."""

    status: str  # "chosen", "ambiguous" or "none"
    chosen: Candidate | None = None
    alternatives: list[Candidate] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    map: dict[str, str | None] = field(default_factory=dict)  # value -> label (None: not placed)
    notes: dict[str, str] = field(default_factory=dict)  # value -> why
    unplaced: list[str] = field(default_factory=list)


@dataclass
class Proposal:
    name: str
    source: str
    samples: pd.DataFrame
    fields: list[str]
    patient: Choice
    timepoint: Choice
    response: Choice
    header: dict  # kind, accession, description, platform, counts... (dataset keys)
    header_notes: list[str] = field(default_factory=list)
    check: str = ""  # what pair_samples says of the proposed rules
    n_pairs: int | None = None


# --------------------------------------------------------------------------- candidates


def candidate_fields(samples: pd.DataFrame) -> list[str]:
    """Sample fields worth showing and searching: characteristics, title, source, description."""
    out = []
    for col in samples.columns:
        if _BOILERPLATE.match(str(col)):
            continue
        vals = samples[col].dropna().astype(str).str.strip()
        if vals.empty or (vals == "").all():
            continue
        out.append(str(col))
    return out


def _kind(col: str) -> str:
    if col == "title":
        return "title"
    if col.startswith("source_name"):
        return "source"
    if col in ("description", "characteristics_ch1"):
        return "other"
    return "characteristic"


def _values(samples: pd.DataFrame, col: str, regex: str | None = None) -> pd.Series:
    """The values the workflow's pairing would read (prepare.pairing._field_values)."""
    v = samples[col].astype("string").str.strip()
    if regex:
        v = v.str.extract(regex, expand=True).iloc[:, 0].astype("string")
    return v.mask(v == "")


def _field_candidates(samples: pd.DataFrame, fields: list[str]) -> list[Candidate]:
    return [Candidate(c, None, _values(samples, c), _kind(c)) for c in fields]


def _title_candidates(samples: pd.DataFrame, patterns) -> list[Candidate]:
    if "title" not in samples:
        return []
    out = []
    for pattern in patterns:
        v = _values(samples, "title", pattern)
        if v.notna().mean() >= 0.8 and v.nunique() < v.notna().sum():
            out.append(Candidate("title", pattern, v, "title"))
    return out


def _groups(values: pd.Series) -> dict[str, list[str]]:
    """Patient id -> its samples (patients with 2+ samples only)."""
    g = values.dropna().groupby(values.dropna()).groups
    return {str(k): [str(s) for s in v] for k, v in g.items() if len(v) >= 2}


def _partition(c: Candidate) -> frozenset:
    return frozenset(frozenset(s) for s in _groups(c.values).values())


def _patient_like(c: Candidate, n: int) -> bool:
    v = c.values.dropna()
    if v.empty:
        return False
    sizes = v.value_counts()
    multi = sizes[sizes >= 2]
    return (len(multi) >= 1 and sizes.max() <= 4 and len(sizes) >= max(2, n // 5)
            and multi.sum() >= 0.3 * n)


def _splits(patient: Candidate, time: Candidate) -> tuple[int, int, list[str]]:
    """(patients split, patients with 2+ samples, patients not split)."""
    groups = _groups(patient.values)
    not_split = []
    for pid, members in groups.items():
        t = time.values.reindex(members)
        if t.isna().any() or t.nunique() != len(members):
            not_split.append(pid)
    return len(groups) - len(not_split), len(groups), not_split


def _equivalent(a: Candidate, b: Candidate) -> bool:
    """Same partition of the samples (a one-to-one relabelling of the values)."""
    both = pd.DataFrame({"a": a.values, "b": b.values}).dropna()
    if len(both) < max(a.values.notna().sum(), b.values.notna().sum()):
        return False
    return (both.groupby("a")["b"].nunique().max() == 1 and both.groupby("b")["a"].nunique().max() == 1)


# --------------------------------------------------------------------------- value placement


def _words(value: str) -> set[str]:
    low = value.lower()
    words = set(re.split(r"[^a-z0-9]+", low)) - {""}
    words |= {re.sub(r"[^a-z0-9]", "", w) for w in re.split(r"\s+", low)}  # pre-treatment
    return words


def place_timepoint(value: str) -> tuple[str | None, str]:
    """(pre/post/on or None, why) for one timepoint value."""
    low = value.strip().lower()
    if low in TIMEPOINT_ABBREVIATIONS:
        label = TIMEPOINT_ABBREVIATIONS[low]
        return label, f"{value!r} read as {_WHY[label]}"
    if re.fullmatch(r"c(ycle)?\s*\d+", low):
        return "on", f"{value!r} read as a treatment cycle (on treatment)"
    words = _words(value)
    hits = {"pre": sorted(words & PRE_WORDS), "post": sorted(words & POST_WORDS),
            "on": sorted(words & ON_WORDS)}
    found = {k for k, v in hits.items() if v}
    if found == {"post", "on"}:  # "after cycle 1": mid-treatment
        found = {"on"}
    if len(found) == 1:
        label = found.pop()
        return label, f"{value!r}: {', '.join(repr(w) for w in hits[label])} ({_WHY[label]})"
    if not found:
        return None, f"{value!r}: no word tells before or after treatment"
    return None, f"{value!r}: words of more than one timepoint ({hits})"


def _drop_value(why: str, value) -> str:
    """A placement's reason without the value itself (the map line shows it already)."""
    head = repr(str(value))
    return why[len(head):].lstrip(": ") if why.startswith(head) else why


def _norm(value: str) -> str:
    return re.sub(r"[\s_-]+", "", value.strip().lower())


def place_response(value: str) -> tuple[str | None, str]:
    n = _norm(value)
    if n in RESPONDER_VALUES:
        return "responder", f"{value!r} read as responder"
    if n in NON_RESPONDER_VALUES:
        return "non_responder", f"{value!r} read as non-responder"
    if n in UNKNOWN_VALUES:
        return "unknown", f"{value!r} read as not known"
    if n in RECIST:
        return RECIST[n], f"{value!r}: RECIST, counted {RECIST[n].replace('_', '-')} (CR/PR vs SD/PD; check the paper)"
    return None, f"{value!r}: not a response value prepost knows"


def timepoint_labels() -> tuple[str, ...]:
    """The labels pairing.timepoint.map accepts in this checkout's schema (pre, post, exclude,
    and on once ordered timepoints are supported)."""
    schema = Path(__file__).resolve().parents[3] / "workflow/schemas/config.schema.yaml"
    try:
        tree = yaml.safe_load(schema.read_text())
        tp = tree["definitions"]["pairing"]["properties"]["timepoint"]["allOf"]
        for part in tp:
            enum = part.get("properties", {}).get("map", {}).get("additionalProperties", {}).get("enum")
            if enum:
                return tuple(enum)
    except (OSError, KeyError, TypeError, ValueError):
        pass
    return ("pre", "post", "exclude")


# --------------------------------------------------------------------------- proposal


def _describe_groups(c: Candidate) -> str:
    sizes = c.values.dropna().value_counts()
    by = sizes.value_counts().sort_index()
    parts = [f"{k} on {s} sample{'s' if s > 1 else ''}" for s, k in by.items()]
    missing = int(c.values.isna().sum())
    return (f"{len(sizes)} ids: " + ", ".join(parts)
            + (f"; {missing} sample(s) without a value" if missing else ""))


def _choose_pairing(samples: pd.DataFrame, fields: list[str]) -> tuple[Choice, Choice]:
    n = len(samples)
    chars = _field_candidates(samples, fields)
    patients = [c for c in chars if _patient_like(c, n)]
    patients += [c for c in _title_candidates(samples, TITLE_PATIENT_PATTERNS) if _patient_like(c, n)]
    times = [c for c in chars if 2 <= c.values.nunique() <= 6 and c.values.nunique() < n]
    times += [c for c in _title_candidates(samples, TITLE_TIMEPOINT_PATTERNS) if 2 <= c.values.nunique() <= 6]

    scored = []
    for p in patients:
        for t in times:
            if t.field == p.field and t.regex == p.regex:
                continue
            split, total, not_split = _splits(p, t)
            if total == 0 or split / total < 0.75:
                continue
            placed = [place_timepoint(str(v))[0] for v in t.values.dropna().unique()]
            frac = sum(x is not None for x in placed) / len(placed)
            named = bool(_ID_NAMES.search(p.field)) and p.kind == "characteristic"
            scored.append(((split, frac, named, -_KIND_RANK[t.kind], -_KIND_RANK[p.kind]), p, t, total, not_split))
    scored.sort(key=lambda x: x[0], reverse=True)
    unplaceable = [s for s in scored if s[0][1] == 0]
    scored = [s for s in scored if s[0][1] > 0]
    if not scored:
        ev = ["no sample field or title pattern groups the samples into patients whose samples are "
              "told apart as before/after treatment: the series does not look paired"]
        for _, p, t, total, _ in unplaceable[:3]:
            vals = ", ".join(repr(v) for v in sorted(t.values.dropna().unique(), key=str)[:6])
            ev.append(f"{p.label} groups samples ({_describe_groups(p)}) and {t.label} splits them, "
                      f"but its values ({vals}) say nothing of before or after treatment")
        if patients and not unplaceable:
            ev.append("fields with repeated ids but no field splitting them: "
                      + "; ".join(f"{c.label} ({_describe_groups(c)})" for c in patients))
        return Choice("none", evidence=ev), Choice("none")
    best_key, p, t, total, not_split = scored[0]

    # patient: candidates as good as the best with another grouping are alternatives
    pchoice = Choice("chosen", chosen=p)
    pchoice.evidence.append(f"{p.label}: {_describe_groups(p)}")
    rivals_p, agree_p = [], []
    for key, p2, t2, *_ in scored[1:]:
        if p2 is p or any(p2 is c for c in rivals_p + agree_p):
            continue
        if _partition(p2) == _partition(p):
            agree_p.append(p2)
        elif key[:2] == best_key[:2]:
            rivals_p.append(p2)
    if agree_p:
        pchoice.evidence.append("the same patients from " + ", ".join(c.label for c in agree_p))
    if rivals_p:
        pchoice.status = "ambiguous"
        pchoice.alternatives = rivals_p
        pchoice.evidence.append("as good, with other patients: " + ", ".join(c.label for c in rivals_p))

    tchoice = Choice("chosen", chosen=t)
    split = best_key[0]
    tchoice.evidence.append(
        f"{t.label} splits {split} of the {total} patients with 2+ samples"
        + (f" (not: {', '.join(not_split[:8])})" if not_split else ""))
    rivals_t, agree_t = [], []
    for key, p2, t2, *_ in scored[1:]:
        if p2 is not p or t2 is t:
            continue
        if _equivalent(t2, t):
            agree_t.append(t2)
        elif key[:2] == best_key[:2]:
            rivals_t.append(t2)
    if agree_t:
        tchoice.evidence.append("the same split from " + ", ".join(c.label for c in agree_t))
    if rivals_t:
        tchoice.status = "ambiguous"
        tchoice.alternatives = rivals_t
        tchoice.evidence.append("as good: " + ", ".join(c.label for c in rivals_t))
    labels = timepoint_labels()
    counts = t.values.value_counts()
    order = {"pre": 0, "on": 1, "post": 2}
    for value in sorted(counts.index, key=lambda v: (order.get(place_timepoint(str(v))[0], 3), str(v))):
        label, why = place_timepoint(str(value))
        if label == "on" and "on" not in labels:
            tchoice.map[value] = "exclude"
            why += "; mapped to exclude: this pairing has no on-treatment timepoint yet (pre/post only)"
        else:
            tchoice.map[value] = label
        tchoice.notes[value] = f"{_drop_value(why, value)}; {counts[value]} samples"
        if label is None:
            tchoice.unplaced.append(str(value))
    mapped = {v for v in tchoice.map.values() if v}
    if tchoice.status == "chosen" and not ({"pre", "post"} <= mapped) and not tchoice.unplaced:
        tchoice.status = "ambiguous"
        tchoice.evidence.append("its values do not give both a pre and a post timepoint")
    return pchoice, tchoice


def _choose_response(samples: pd.DataFrame, fields: list[str], used: set[str], patient: Candidate | None) -> Choice:
    cands = []
    for c in _field_candidates(samples, fields):
        if c.field in used:
            continue
        vals = c.values.dropna()
        if vals.empty or vals.nunique() > 8:
            continue
        placed = {v: place_response(str(v)) for v in vals.unique()}
        known = {v: p for v, p in placed.items() if p[0] in ("responder", "non_responder")}
        kinds = {p[0] for p in known.values()}
        frac = sum(p[0] is not None for p in placed.values()) / len(placed)
        named = bool(_RESPONSE_NAMES.search(c.field))
        if (kinds == {"responder", "non_responder"} and frac == 1.0) or named:
            cands.append(((frac == 1.0 and len(kinds) == 2, named, frac), c, placed))
    if not cands:
        return Choice("none", evidence=["no field reads as response (pCR/RD, R/NR, responder...)"])
    cands.sort(key=lambda x: x[0], reverse=True)
    key, c, placed = cands[0]
    choice = Choice("chosen", chosen=c)
    counts = c.values.value_counts()
    order = {"responder": 0, "non_responder": 1, "unknown": 2}
    for value in sorted(placed, key=lambda v: (order.get(placed[v][0], 3), str(v))):
        label, why = placed[value]
        choice.map[value] = label
        choice.notes[value] = f"{_drop_value(why, value)}; {counts[value]} samples"
        if label is None:
            choice.unplaced.append(str(value))
    choice.evidence.append(f"{c.label}: values " + ", ".join(f"{v!r} ({counts[v]})" for v in sorted(placed, key=str)))
    rivals = [c2 for k2, c2, _ in cands[1:] if k2[:1] == key[:1] and k2[0] and not _equivalent(c2, c)]
    if rivals:
        choice.status = "ambiguous"
        choice.alternatives = rivals
        choice.evidence.append("as good: " + ", ".join(r.label for r in rivals))
    if choice.unplaced:
        choice.status = "ambiguous"
        if re.search(r"miller|payne", c.field, re.IGNORECASE):
            choice.evidence.append(
                "Miller & Payne grades: 5 is no residual invasive tumour (pCR-like), 1-4 residual "
                "disease; the split (5 vs 1-4, or 4-5 vs 1-3) is the paper's choice")
            for value in choice.unplaced:
                choice.map[value] = "responder" if value.strip() == "5" else "non_responder"
                choice.notes[value] += "; suggested from the Miller & Payne grade, decide"
    if patient is not None:
        both = pd.DataFrame({"p": patient.values, "r": c.values}).dropna()
        mixed = sorted(both.groupby("p")["r"].nunique().loc[lambda s: s > 1].index.astype(str))
        if mixed:
            choice.evidence.append(f"differs between the samples of patient(s) {', '.join(mixed[:8])}: "
                                   "the workflow stops on that; check the field")
    return choice


def propose(samples: pd.DataFrame, name: str, source: str, header: dict | None = None,
            header_notes: list[str] | None = None) -> Proposal:
    """The pairing proposal for one sample sheet (index: sample ids; columns: GEO fields)."""
    samples = samples.copy()
    samples.index = samples.index.astype(str)
    fields = candidate_fields(samples)
    patient, timepoint = _choose_pairing(samples, fields)
    used = {c.field for c in (patient.chosen, timepoint.chosen) if c is not None and c.regex is None}
    response = _choose_response(samples, fields, used, patient.chosen)
    prop = Proposal(name=name, source=source, samples=samples, fields=fields, patient=patient,
                    timepoint=timepoint, response=response, header=dict(header or {}),
                    header_notes=list(header_notes or []))
    _check(prop)
    return prop


def pairing_rules(prop: Proposal) -> dict | None:
    """The proposed pairing block as a dict, or None while a choice is left to the user."""
    if prop.patient.status != "chosen" or prop.timepoint.status != "chosen" or prop.timepoint.unplaced:
        return None
    rules = {"patient": prop.patient.chosen.rule(),
             "timepoint": {**prop.timepoint.chosen.rule(), "map": dict(prop.timepoint.map)}}
    if prop.response.status == "chosen":
        rules["response"] = {**prop.response.chosen.rule(), "map": dict(prop.response.map)}
    return rules


def _check(prop: Proposal) -> None:
    rules = pairing_rules(prop)
    if prop.patient.status == "none":
        prop.check = "no pairs: nothing to pair"
        prop.n_pairs = 0
        return
    if rules is None:
        prop.check = "not run: a choice above is left to you (commented out in the block)"
        return
    try:
        sheet, ledger = pair_samples(prop.samples, rules, prop.name)
    except PairingError as err:
        prop.check = f"the workflow's pairing refuses these rules: {err}"
        return
    kept = ledger[ledger["status"] == "kept"]
    prop.n_pairs = int(kept["patient"].nunique())
    dropped = ledger[ledger["status"] != "kept"]
    reasons = dropped["reason"].str.replace(r"patient \S+ has", "patient has", regex=True).value_counts()
    prop.check = (f"{prop.n_pairs} complete pairs ({len(kept)} samples)"
                  + ("; dropped: " + "; ".join(f"{k} x{v}" for k, v in reasons.items()) if len(dropped) else "")
                  + (f"; the workflow needs at least {MIN_PAIRS} pairs" if prop.n_pairs < MIN_PAIRS else ""))


# --------------------------------------------------------------------------- rendering


def q(value) -> str:
    """A YAML scalar that reads back as the same text (always quoted: On, 1, c2, R...)."""
    return "'" + str(value).replace("'", "''") + "'"


def _comment_lines(text: str, indent: str) -> list[str]:
    return [f"{indent}# {line}" for line in text.splitlines()]


def _rule_lines(key: str, c: Candidate, indent: str) -> list[str]:
    inner = f"field: {q(c.field)}" + (f", regex: {q(c.regex)}" if c.regex else "")
    return [f"{indent}{key}: {{{inner}}}"]


def _map_lines(key: str, choice: Choice, indent: str, commented: bool) -> list[str]:
    c = choice.chosen
    pre = "# " if commented else ""
    lines = [f"{indent}{pre}{key}:", f"{indent}{pre}  field: {q(c.field)}"]
    if c.regex:
        lines.append(f"{indent}{pre}  regex: {q(c.regex)}")
    lines.append(f"{indent}{pre}  map:")
    for value, label in choice.map.items():
        why = choice.notes.get(value, "")
        if label is None:
            lines.append(f"{indent}  # {q(value)}: ?   # NOT PLACED: {why}; map it to pre, post or exclude")
        else:
            lines.append(f"{indent}{pre}    {q(value)}: {label}   # {why}")
    return lines


def render_block(prop: Proposal, indent: str = "  ") -> str:
    """The dataset block (under ``datasets:``), with its evidence as comments."""
    i1, i2, i3 = indent, indent * 2, indent * 3
    out = [f"{i1}# proposed by `prepost init` from {prop.source} ({len(prop.samples)} samples)"]
    out.append(f"{i1}# pairing check: {prop.check}")
    out.append(f"{i1}{prop.name}:")
    h = prop.header
    for key in ("kind", "accession", "description"):
        if key in h:
            out.append(f"{i2}{key}: {q(h[key]) if key == 'description' else h[key]}")
    for key, value in h.items():
        if key in ("kind", "accession", "description"):
            continue
        if isinstance(value, dict):
            inner = ", ".join(f"{k}: {v}" for k, v in value.items())
            out.append(f"{i2}{key}: {{{inner}}}")
        else:
            out.append(f"{i2}{key}: {value}")
    for note in prop.header_notes:
        out += _comment_lines(note, i2)
    if prop.patient.status == "none":
        out.append(f"{i2}# pairing: NO PAIRS FOUND")
        out += _comment_lines("\n".join(prop.patient.evidence), i2)
        out.append(f"{i2}# pairing:")
        out.append(f"{i2}#   patient: {{field: <characteristic holding the patient id>}}")
        out.append(f"{i2}#   timepoint: {{field: <characteristic>, map: {{<value>: pre, <value>: post}}}}")
        return "\n".join(out) + "\n"
    out.append(f"{i2}pairing:")
    for key, choice in (("patient", prop.patient), ("timepoint", prop.timepoint), ("response", prop.response)):
        if choice.status == "none":
            out += _comment_lines(f"{key}: " + "; ".join(choice.evidence), i3)
            continue
        out += _comment_lines(f"{key}: " + "; ".join(choice.evidence), i3)
        commented = choice.status == "ambiguous"
        if commented:
            out.append(f"{i3}# AMBIGUOUS: pick one of these and uncomment it")
        if key == "patient":
            lines = _rule_lines(key, choice.chosen, i3)
            for alt in choice.alternatives:
                lines += _rule_lines(key, alt, i3)
            out += [f"{i3}# {ln.strip()}" if commented else ln for ln in lines]
        else:
            out += _map_lines(key, choice, i3, commented)
            for alt in choice.alternatives:
                vals = ", ".join(q(v) for v in sorted(alt.values.dropna().unique(), key=str))
                out.append(f"{i3}# or {key}: {{{_rule_lines(key, alt, '')[0].split(': ', 1)[1][1:-1]}}}  # values {vals}")
    contrasts = ["post_vs_pre"]
    if prop.response.status == "chosen":
        contrasts += ["responder_vs_non_responder_pre", "post_vs_pre_responder",
                      "post_vs_pre_non_responder", "interaction"]
    out.append(f"{i2}contrasts: [{', '.join(contrasts)}]")
    if prop.response.status != "chosen":
        out.append(f"{i2}# with a response: add responder_vs_non_responder_pre, post_vs_pre_responder, "
                   "post_vs_pre_non_responder, interaction")
    return "\n".join(out) + "\n"


def render_table(prop: Proposal, max_rows: int = 60, width: int = 28) -> str:
    """The samples' fields as a plain-text table (the fields init searched)."""
    cols = [c for c in prop.fields]
    df = prop.samples[cols].astype("string").fillna("")
    df = df.apply(lambda s: s.str.slice(0, width))
    df.insert(0, "sample", df.index)
    shown = df.head(max_rows)
    widths = {c: max(len(str(c)[:width]), *(len(v) for v in shown[c])) for c in shown.columns}
    lines = ["  ".join(str(c)[:width].ljust(widths[c]) for c in shown.columns)]
    for _, row in shown.iterrows():
        lines.append("  ".join(str(row[c]).ljust(widths[c]) for c in shown.columns).rstrip())
    if len(df) > max_rows:
        lines.append(f"... {len(df) - max_rows} more samples")
    return "\n".join(lines) + "\n"


def render_report(prop: Proposal) -> str:
    """What init tells: the table, each choice with its evidence and the unplaced values."""
    out = [f"== {prop.name}: {prop.source} ({len(prop.samples)} samples)", "", render_table(prop)]
    for key, choice in (("patient", prop.patient), ("timepoint", prop.timepoint), ("response", prop.response)):
        head = {"chosen": "proposed", "ambiguous": "AMBIGUOUS (commented out)", "none": "none found"}[choice.status]
        out.append(f"{key}: {head}" + (f" -> {choice.chosen.label}" if choice.chosen else ""))
        out += [f"  - {e}" for e in choice.evidence]
        if choice.unplaced:
            out.append("  - values not placed: " + ", ".join(repr(v) for v in choice.unplaced))
    out.append(f"pairing check: {prop.check}")
    return "\n".join(out) + "\n"
