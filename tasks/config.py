"""One typed configuration object, loaded from a TOML file and overridable from the CLI.

Every option has a default, so no file is needed. Unknown keys are errors (a typo in a
config must not be silently ignored). ``ConfigError`` carries one readable line.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(ValueError):
    """A user mistake in the configuration: the message is one line meant for a human."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReadConfig(_Section):
    text_field: str = Field("text", min_length=1, description="Field (JSON lines, JSON) or column (Parquet, CSV/TSV) that holds the text.")
    preferred_encodings: list[str] = Field(
        ["cp1252"],
        description="Legacy encodings preferred when detection finds several equally plausible ones.",
    )
    max_record_mb: float = Field(
        16.0, gt=0, le=1024,
        description="Largest record read: a .txt/.md(.gz) file, a JSON line, a Parquet text value, an HTML page, a "
        ".json file (parsed whole), a WARC record's content or a CSV row above this is a reject (too_large), so memory "
        "follows this limit, not the input (a record's cleaning takes ~20x its size).",
    )
    oversize: Literal["reject", "cut"] = Field(
        "reject",
        description="A .txt/.md file (.txt.gz/.md.gz too) above max_record_mb: reject it (too_large), or cut it at the last line break "
        "before the limit and clean that part (JSON lines and Parquet records cannot be cut: always rejected).",
    )
    max_decompressed_mb: float = Field(
        20_000.0, gt=0, description="A compressed file (.jsonl.gz, .jsonl.zst, .txt.gz/.md.gz, .html.gz/.htm.gz, "
        ".warc.gz/.warc.wet.gz: its records' declared sizes) expanding past this is cut there: reject "
        "decompression_limit (records read before it are kept).",
    )
    max_decompression_ratio: float = Field(
        200.0, ge=2, description="...or expanding more than this many times its compressed size (past its first "
        "16 MB): a gzip bomb. Text and JSON compress 3-20x.",
    )
    follow_symlinks: Literal["inside", "all", "none"] = Field(
        "inside",
        description="Symbolic links in the raw folder: inside reads a link to a file inside the raw folder (a link "
        "leaving it, or to a folder, is a reject: symlink); all follows every link (files and folders); none rejects every link.",
    )
    html_field: str | None = Field(
        None,
        description="Field or column of JSON lines, JSON, Parquet and CSV records that holds a page's HTML: a record "
        "with HTML there is extracted with trafilatura (its text field is then not used); unset: records are text.",
    )
    html_favor: Literal["balanced", "precision", "recall"] = Field(
        "recall",
        description="trafilatura's trade-off for HTML (balanced, precision or recall): recall scores best on the "
        "four gold sets (README, Input formats).",
    )
    html_comments: bool = Field(
        False, description="Keep the comments section trafilatura finds on a page (true), or only its main text."
    )
    html_title: bool = Field(
        True, description="Put the page's title (its headline, else <title>) first in the text when trafilatura "
        "left it out of the extracted text (a headline outside the article's container)."
    )


class RepairConfig(_Section):
    ftfy: bool = Field(True, description="Repair mojibake with ftfy (quotes are never uncurled).")


class BoilerplateConfig(_Section):
    enabled: bool = Field(True, description="Flag site chrome (newsletter prompts, share bars, credits...).")
    rule_packs: list[str] = Field(
        ["common", "en"],
        description="Built-in rule packs applied to every document (tasks/stages/rules/NAME.toml); English chrome "
        "(share, comment counters) appears on pages in every language.",
    )
    language_packs: bool = Field(
        True,
        description="Also apply each document's language pack (en, fr, de, es, it, pt, nl, pl: tasks/stages/rules/LANG.toml), "
        "the language guessed from its function words; a document too short to tell, or in a language without a "
        "function-word list, gets every language pack. false: only "
        "rule_packs (a pinned list).",
    )
    extra_rule_files: list[Path] = Field(
        [], description="Your own rule packs (same TOML format), added to the built-in ones."
    )
    classifier: bool = Field(
        True,
        description="After the rules, a line classifier with context decides which other lines are article "
        "text (tasks/stages/linefeatures.py); false: the rules alone.",
    )
    classifier_threshold: float | None = Field(
        None, gt=0.0, lt=1.0,
        description="Keep a line when the classifier's probability that it is article text exceeds this "
        "(lower keeps more; inside the main content block the bar is lower); unset: the fitted one "
        "(tasks/stages/models/content_classifier.json).",
    )
    html_classifier: bool = Field(
        False,
        description="Also run the line classifier on text extracted from HTML (trafilatura already removed the "
        "chrome; the rules always run): false scores better on the four gold sets (README, Input formats).",
    )
    classifier_min_lines: int = Field(
        5, ge=1, description="Documents with fewer lines left by the rules are not classified (all kept)."
    )
    unrelated_lines: bool = Field(
        False,
        description="With the classifier: also remove kept lines outside the article's core, without a sentence "
        "end, that share no words with it (teasers, bios, promotions): +0.003 mean line F1 on the four gold sets, "
        "~5% more CPU in the boilerplate stage on real pages (README, Unrelated lines outside the core).",
    )
    comment_threads: bool = Field(
        True,
        description="With the classifier: drop reader comments under an article (from the first of 3+ comment "
        "markers such as 'Jane says:', 'Reply', 'by jdoe on <date>' within 40 lines, when 300+ words of article "
        "come before; tasks/stages/lang/comment_markers.toml). false: comments that read like prose are kept.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "BoilerplateConfig":
        if self.classifier_threshold is not None and not self.classifier:
            raise ValueError("boilerplate.classifier_threshold is set but boilerplate.classifier is false")
        if self.enabled and not self.rule_packs and not self.language_packs and not self.extra_rule_files \
                and not self.classifier:
            raise ValueError("boilerplate is enabled with no rule pack, no rule file and no classifier: "
                             "set boilerplate.enabled = false instead")
        return self


class LanguageConfig(_Section):
    prefix_chars: int = Field(1000, ge=50, description="Characters of kept text used to detect a document's language.")
    paragraph_min_chars: int = Field(
        200, ge=20, description="Paragraphs at least this long get their own detection; shorter ones inherit."
    )
    trials: int = Field(
        3,
        ge=1,
        le=20,
        description="langdetect trials per detection (its default is 7; 3 gives the same language on "
        "99.7% of 990 real web pages at about a quarter of the cost).",
    )


class DedupConfig(_Section):
    enabled: bool = Field(True, description="Find exact and near-duplicate paragraphs.")
    threshold: float = Field(0.8, gt=0.0, le=1.0, description="Jaccard similarity of character n-grams.")
    ngram: int = Field(5, ge=1, le=32, description="Character n-gram size for shingles.")
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations.")
    seed: int = Field(1, ge=0, le=2**32 - 1, description="MinHash seed (datasketch-compatible).")
    repeated_line_min_docs: int = Field(
        3,
        ge=0,
        description="Corpus-learned chrome: a short line found on at least this many documents of one site "
        "is boilerplate (reason repeated_line) in every copy; 0 turns it off.",
    )
    repeated_line_max_chars: int = Field(
        120, ge=1, description="Longer repeated lines are content (syndication), handled as duplicates."
    )
    partition_paragraphs: int = Field(
        500_000, ge=1, description="Keyed paragraphs per partition of the run-level duplicate search (memory per "
        "process follows it, not the corpus; any value gives the same decisions).",
    )
    bands: int | None = Field(None, ge=1, description="LSH bands; chosen from the threshold when unset.")
    rows: int | None = Field(None, ge=1, description="LSH rows per band; chosen from the threshold when unset.")

    @model_validator(mode="after")
    def _bands_fit(self) -> "DedupConfig":
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both dedup.bands and dedup.rows, or neither")
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"dedup.bands * dedup.rows ({self.bands * self.rows}) exceeds dedup.num_perm ({self.num_perm})")
        return self


class RunConfig(_Section):
    shard_mb: float = Field(16.0, gt=0, description="Target input megabytes per shard (one Prefect task each).")
    batch_docs: int = Field(500, ge=1, description="Documents cleaned per in-memory batch inside a shard (at most).")
    batch_mb: float = Field(
        2.0, gt=0, description="Megabytes of text (characters) per in-memory batch (at most, about): bounds a "
        "batch's working set when documents are long pages of many short lines.",
    )
    task_runner: Literal["threads", "processes", "dask"] = Field(
        "processes",
        description="Prefect task runner for shards: processes (one per worker: `workers` cores), threads "
        "(no start-up cost, one core: the GIL), or dask (a Dask cluster through prefect-dask).",
    )
    dask_address: str | None = Field(
        None,
        description="Scheduler of an existing Dask cluster (tcp://host:8786) for task_runner = dask; unset starts "
        "a LocalCluster of `workers` processes. Workers must see the raw and output folders at the same paths.",
    )
    workers: int = Field(2, ge=1, description="Parallel shards.")
    wait_for_lock: bool = Field(
        False, description="When another run is writing to the output folder: wait for it (true) or stop (false)."
    )
    reference: bool = Field(
        False,
        description="Run the unoptimised reference chain (ftfy on every line, stock langdetect, "
        "datasketch MinHash objects, all-pairs Jaccard). Same output, much slower: for tests and benchmarks.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "RunConfig":
        if self.dask_address is not None and self.task_runner != "dask":
            raise ValueError(f"run.dask_address is set but run.task_runner is {self.task_runner!r}, not 'dask'")
        return self


class Config(_Section):
    read: ReadConfig = ReadConfig()
    repair: RepairConfig = RepairConfig()
    boilerplate: BoilerplateConfig = BoilerplateConfig()
    language: LanguageConfig = LanguageConfig()
    dedup: DedupConfig = DedupConfig()
    run: RunConfig = RunConfig()


def _parse_value(raw: str) -> Any:
    """Parse a CLI override value as TOML (numbers, booleans, lists), else keep the string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _apply_override(data: dict[str, Any], assignment: str) -> None:
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {assignment!r} is not of the form section.key=value")
    parts = [p.strip() for p in key.strip().split(".")]
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {assignment!r}: {part!r} is not a section")
    node[parts[-1]] = _parse_value(raw.strip())


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "config"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown option"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{where}: {msg}{more}"


def load_config(path: Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load defaults, then the TOML file (if any), then ``section.key=value`` overrides.

    Relative paths inside the file (``extra_rule_files``) are resolved against the file's folder.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        extra = data.get("boilerplate", {}).get("extra_rule_files")
        if isinstance(extra, list):
            data["boilerplate"]["extra_rule_files"] = [
                str((path.parent / p).resolve()) if not Path(p).is_absolute() else p for p in extra
            ]
    for assignment in overrides or []:
        _apply_override(data, assignment)
    try:
        config = Config.model_validate(data)
    except ValidationError as err:
        source = f" in {path}" if path else ""
        raise ConfigError(f"invalid configuration{source}: {_first_error(err)}") from None
    _check_rule_packs(config.boilerplate)
    return config


def _check_rule_packs(boilerplate: BoilerplateConfig) -> None:
    """Load every rule pack list a run may use, so that an unknown pack, a missing rule file or a
    bad pattern is one line before any work starts, not a failure inside a shard."""
    if not boilerplate.enabled:
        return
    from .stages.boilerplate import language_packs, load_rule_packs  # the stage module imports this one

    lists = [boilerplate.rule_packs]
    if boilerplate.language_packs:
        lists += [[*boilerplate.rule_packs, pack] for pack in language_packs() if pack not in boilerplate.rule_packs]
    try:
        for packs in lists:
            load_rule_packs(packs, boilerplate.extra_rule_files)
    except ValueError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None


def config_to_toml(config: Config) -> str:
    """Render a config as TOML (for ``corpusclean config``): every option, with its description."""
    lines: list[str] = []
    for section_name, section_field in Config.model_fields.items():
        section = getattr(config, section_name)
        lines.append(f"[{section_name}]")
        for name, field in type(section).model_fields.items():
            value = getattr(section, name)
            if field.description:
                lines.append(f"# {field.description}")
            if value is None:
                lines.append(f"# {name} = (unset)")
            else:
                lines.append(f"{name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
