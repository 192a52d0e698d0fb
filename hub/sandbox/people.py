"""Seeded, generated people and recruiting data for the simulators: nobody real.

The same seed gives the same data, so a test can compute what a sync must produce.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

FAMILY = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鑫宇浩轩子涵欣怡梓晨思雨博文佳琪嘉怡一诺"
PINYIN_FAMILY = ["wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun"]
SKILLS = [
    "Python",
    "Java",
    "Go",
    "SQL",
    "TensorFlow",
    "PyTorch",
    "Spark",
    "Kubernetes",
    "React",
    "数据标注",
    "机器学习",
    "深度学习",
    "数据分析",
    "自然语言处理",
    "计算机视觉",
    "财务分析",
    "招聘",
    "项目管理",
    "Excel",
    "产品设计",
    "测试",
    "Linux",
    "Docker",
    "推荐系统",
    "大数据",
    "Hadoop",
]
TITLES = [
    ("数据标注工程师", ["数据标注", "Python", "机器学习"]),
    ("机器学习工程师", ["Python", "TensorFlow", "PyTorch", "机器学习"]),
    ("后端工程师", ["Java", "Go", "SQL", "Kubernetes"]),
    ("数据分析师", ["SQL", "Excel", "数据分析", "Python"]),
    ("前端工程师", ["React", "测试", "产品设计"]),
    ("Data Engineer", ["Spark", "Hadoop", "SQL", "Python"]),
]
DEPARTMENTS = ["研发中心", "数据智能部", "财务部", "人力资源部", "市场部"]
COMPANIES = ["星河科技", "云帆数据", "北辰智能", "Acme Corp", "蓝海信息", "启明软件"]
SCHOOLS = ["清华大学", "浙江大学", "复旦大学", "武汉大学", "中山大学", "四川大学"]

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_REGIONS = ("110105", "310104", "440305", "330106", "510107", "420111")


def id_number(rng: random.Random) -> str:
    """A resident ID number with a valid GB 11643 check digit (of nobody)."""
    body = (
        rng.choice(_REGIONS)
        + f"{rng.randint(1975, 2003)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        + f"{rng.randint(0, 999):03d}"
    )
    return body + _CHECK[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]


#: mobile prefixes that libphonenumber accepts as valid Chinese mobile numbers
_MOBILE_PREFIXES = (
    *(str(p) for p in range(130, 140)),
    *("150", "151", "152", "153", "155", "156", "157", "158", "159"),
    *("176", "177", "178", *(str(p) for p in range(180, 190)), "198", "199"),
)


def bank_card(rng: random.Random) -> str:
    """A 19-digit UnionPay debit card number (ICBC's 622202 prefix) with a valid Luhn digit."""
    body = "622202" + "".join(str(rng.randrange(10)) for _ in range(12))
    total = 0
    for position, digit in enumerate(reversed(body)):
        value = int(digit) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return body + str((10 - total % 10) % 10)


def mobile(rng: random.Random) -> str:
    return f"{rng.choice(_MOBILE_PREFIXES)}{rng.randint(0, 99999999):08d}"


@dataclass
class Person:
    """One generated candidate."""

    index: int
    family_name: str
    given_name: str
    email: str
    phone: str
    id_number: str
    years_experience: int
    skills: list[str] = field(default_factory=list)
    company: str = ""
    school: str = ""

    @property
    def name(self) -> str:
        return self.family_name + self.given_name

    def resume_text(self) -> str:
        """A short resume: experience, skills, employer and school, in Chinese and English."""
        return (
            f"{self.years_experience}年工作经验，曾就职于{self.company}。毕业于{self.school}。"
            f"技能：{'、'.join(self.skills)}。Skills: {', '.join(self.skills)}; "
            f"{self.years_experience} years of experience."
        )


def person(index: int, rng: random.Random) -> Person:
    given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    return Person(
        index=index,
        family_name=rng.choice(FAMILY),
        given_name=given,
        email=f"{rng.choice(PINYIN_FAMILY)}.{index}@example.com",
        phone=mobile(rng),
        id_number=id_number(rng),
        years_experience=rng.randint(0, 15),
        skills=rng.sample(SKILLS, rng.randint(2, 6)),
        company=rng.choice(COMPANIES),
        school=rng.choice(SCHOOLS),
    )


def people(count: int, seed: int = 1) -> list[Person]:
    """``count`` generated candidates; the same seed gives the same people."""
    rng = random.Random(seed)
    return [person(i, rng) for i in range(1, count + 1)]
