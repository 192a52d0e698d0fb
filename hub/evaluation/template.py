"""The structured-interview competency template: competencies, weights, rubric levels, questions.

Interviewers rate an application per competency (or per question) on a rubric; scorecards
arrive as canonical :class:`~hub.schema.recruiting.Rating` items whose ``competency`` is
whatever label the ATS used: the template's key (``technical``), its Chinese name
(``技术能力``), a Greenhouse scorecard attribute (``Technical Skills``) or a question id.
:meth:`Template.resolve` maps each label to its competency, and to its question when the label
names one, so a question's points can weigh it.

The default template weighs technical ability 45%, business understanding and collaboration
25%, learning ability 20%, attention to detail and responsibility 10% (hub.toml changes the
weights per job; a template file replaces the whole template).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

_LABEL_DROP = re.compile(r"[^0-9a-z\u3400-\u9fff\uf900-\ufaff]+")


def label_key(label: str) -> str:
    """How labels are compared: NFKC, case-folded, ``&`` read as "and", punctuation and spaces gone.

    ``Attention to Detail & Responsibility`` == ``attention_to_detail_and_responsibility``.
    """
    text = unicodedata.normalize("NFKC", label).casefold().replace("&", " and ")
    return _LABEL_DROP.sub("", text)


@dataclass(frozen=True)
class RubricLevel:
    """One level of a competency's rating scale, with the behaviour that earns it."""

    level: int
    label: str
    behaviour: str


@dataclass(frozen=True)
class Question:
    """A structured-interview question; its points weigh its rating within the competency."""

    id: str
    text: str
    points: float
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Competency:
    """A competency of the template, its weight (percent of the interview score) and rubric."""

    key: str
    name: str
    name_en: str
    weight: float
    aliases: tuple[str, ...] = ()
    levels: tuple[RubricLevel, ...] = ()
    questions: tuple[Question, ...] = ()

    @property
    def points(self) -> float:
        """What a rating of the whole competency weighs: all its questions' points (1 without questions)."""
        return sum(q.points for q in self.questions) or 1.0

    def labels(self) -> tuple[str, ...]:
        return (self.key, self.name, self.name_en, *self.aliases)


@dataclass(frozen=True)
class Template:
    """Competencies in order, and the rating scale a score without ``max_score`` is read on."""

    competencies: tuple[Competency, ...]
    scale: float = 5.0
    _by_label: dict[str, tuple[str, str | None]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        index: dict[str, tuple[str, str | None]] = {}
        for competency in self.competencies:
            for question in competency.questions:
                for label in (question.id, question.text, *question.aliases):
                    index.setdefault(label_key(label), (competency.key, question.id))
        for competency in self.competencies:  # a competency's own names win over a question's
            for label in competency.labels():
                index[label_key(label)] = (competency.key, None)
        index.pop("", None)
        self._by_label.update(index)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.competencies)

    def competency(self, name: str) -> Competency | None:
        """The competency a key, name or alias names (questions do not count here)."""
        found = self._by_label.get(label_key(name))
        if found is None or found[1] is not None:
            return None
        return self.get(found[0])

    def get(self, key: str) -> Competency:
        for competency in self.competencies:
            if competency.key == key:
                return competency
        raise KeyError(key)

    def resolve(self, label: str) -> tuple[Competency, Question | None] | None:
        """The competency (and question) a rating label names, or None when the template has neither."""
        found = self._by_label.get(label_key(label))
        if found is None:
            return None
        competency = self.get(found[0])
        question = next((q for q in competency.questions if q.id == found[1]), None)
        return competency, question

    def with_weights(self, weights: Mapping[str, float]) -> Template:
        """The same template with competency weights replaced (keys already validated)."""
        return Template(
            tuple(replace(c, weight=float(weights.get(c.key, c.weight))) for c in self.competencies),
            self.scale,
        )

    def weights(self) -> dict[str, float]:
        return {c.key: c.weight for c in self.competencies}


def _levels(*behaviours: str) -> tuple[RubricLevel, ...]:
    labels = (
        "不符合 / Does not meet",
        "部分符合 / Partly meets",
        "符合 / Meets",
        "良好 / Exceeds",
        "卓越 / Outstanding",
    )
    return tuple(
        RubricLevel(level=i + 1, label=labels[i], behaviour=text) for i, text in enumerate(behaviours)
    )


DEFAULT_TEMPLATE = Template(
    competencies=(
        Competency(
            key="technical",
            name="技术能力",
            name_en="Technical ability",
            weight=45.0,
            aliases=(
                "technical skills",
                "technical",
                "technical competence",
                "coding",
                "problem solving",
                "专业能力",
                "专业技能",
                "技术",
            ),
            levels=_levels(
                "核心技术概念错误，无法独立完成题目 / Core concepts wrong; cannot solve the task alone.",
                "能完成部分题目，需要大量提示 / Solves parts of the task with heavy hints.",
                "独立完成题目，方案基本正确 / Solves the task alone with a sound approach.",
                "方案清晰，考虑边界与性能 / Clear solution that handles edge cases and performance.",
                "给出多种方案并权衡取舍，可指导他人 / Weighs alternatives and trade-offs; could coach others.",
            ),
            questions=(
                Question("tech_design", "系统设计题 / System design", 25.0, ("system design", "系统设计")),
                Question("tech_coding", "编程实操题 / Coding exercise", 20.0, ("coding exercise", "编程题")),
            ),
        ),
        Competency(
            key="business",
            name="业务理解与协作",
            name_en="Business understanding and collaboration",
            weight=25.0,
            aliases=(
                "business understanding",
                "business acumen",
                "collaboration",
                "teamwork",
                "communication",
                "业务理解",
                "团队协作",
                "沟通协作",
                "沟通能力",
            ),
            levels=_levels(
                "不了解业务目标，沟通不清 / No grasp of the business goal; unclear communication.",
                "理解部分业务，协作依赖他人推动 / Partial grasp; collaborates only when pushed.",
                "理解业务目标，能与团队顺畅协作 / Understands the goal; works smoothly with the team.",
                "能从业务出发提出方案，主动协调资源 / Proposes from the business need; coordinates proactively.",
                "能影响业务决策，推动跨团队合作 / Shapes business decisions; drives cross-team work.",
            ),
            questions=(
                Question("biz_case", "业务案例分析 / Business case", 15.0, ("business case", "业务案例")),
                Question("biz_collab", "协作经历追问 / Collaboration story", 10.0, ("collaboration story",)),
            ),
        ),
        Competency(
            key="learning",
            name="学习能力",
            name_en="Learning ability",
            weight=20.0,
            aliases=("learning", "learning agility", "curiosity", "growth mindset", "学习", "成长潜力"),
            levels=_levels(
                "回避新知识，无学习实例 / Avoids new topics; no example of learning.",
                "在要求下学习，迁移较慢 / Learns when required; slow to transfer.",
                "能举出主动学习并应用的实例 / Gives examples of learning something and applying it.",
                "快速掌握新领域并举一反三 / Picks up new fields fast and generalises.",
                "系统性自我提升并带动团队学习 / Systematic self-development; lifts the team's learning.",
            ),
            questions=(
                Question("learn_new", "新技术学习经历 / Learning something new", 12.0, ("learning story",)),
                Question("learn_feedback", "反馈与改进 / Acting on feedback", 8.0, ("acting on feedback",)),
            ),
        ),
        Competency(
            key="detail",
            name="细节与责任心",
            name_en="Attention to detail and responsibility",
            weight=10.0,
            aliases=(
                "attention to detail",
                "responsibility",
                "ownership",
                "accountability",
                "细节",
                "责任心",
                "细致严谨",
            ),
            levels=_levels(
                "多处疏漏，推卸责任 / Frequent slips; deflects responsibility.",
                "偶有疏漏，需要提醒跟进 / Occasional slips; needs reminders to follow up.",
                "工作细致，对结果负责 / Careful work; owns the outcome.",
                "主动检查与复盘，预防问题 / Checks and reviews proactively; prevents problems.",
                "建立质量机制，为团队兜底 / Builds quality practices; the team relies on them.",
            ),
            questions=(
                Question("detail_quality", "质量把控实例 / Quality example", 6.0, ("quality example",)),
                Question("detail_ownership", "担责经历 / Ownership story", 4.0, ("ownership story",)),
            ),
        ),
    ),
    scale=5.0,
)
