"""The words the ``people`` planner knows: person nouns (``roles.txt``,
``gendered.txt``), the words that fix an attribute, and capitalised words that begin
no name. Pure Python and data files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


NUMBERS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "dozen": 12, "several": 3, "many": 5, "few": 3, "couple": 2, "pair": 2,
}
GROUP_WORDS = {"team", "group", "crowd", "family", "class", "band", "crew", "squad", "couple", "pair", "gang",
               "staff", "panel", "committee", "bunch", "line", "row", "circle", "choir", "troop", "club", "council"}
DETERMINERS = {"a", "an", "one", "the", "this", "that", "my", "your", "his", "her", "our", "their", "some", "every",
               "each", "any"}
PRONOUNS = {"he": "male", "him": "male", "his": "male", "himself": "male",
            "she": "female", "her": "female", "hers": "female", "herself": "female"}
GENDER_WORDS = {"male": "male", "female": "female", "masculine": "male", "feminine": "female"}
AGE_WORDS = {
    "baby": "infancy", "infant": "infancy", "newborn": "infancy", "toddler": "infancy",
    "child": "childhood", "little": "childhood", "kid": "childhood",
    "teenage": "adolescence", "teen": "adolescence", "teenaged": "adolescence", "adolescent": "adolescence",
    "young": "young adulthood", "youthful": "young adulthood",
    "middle-aged": "middle age", "middle aged": "middle age", "mature": "middle age",
    "old": "old age", "elderly": "old age", "aged": "old age", "senior": "old age", "older": "old age",
    "retired": "old age", "aging": "old age", "ageing": "old age", "grey-haired": "old age", "gray-haired": "old age",
}
RACE_WORDS = {
    "white": "White", "caucasian": "White", "european": "White",
    "black": "Black", "african": "Black", "african-american": "Black", "african american": "Black",
    "latino": "Latino-Hispanic", "latina": "Latino-Hispanic", "latinx": "Latino-Hispanic",
    "hispanic": "Latino-Hispanic", "mexican": "Latino-Hispanic", "brazilian": "Latino-Hispanic",
    "colombian": "Latino-Hispanic", "puerto rican": "Latino-Hispanic",
    "asian": "Asian", "chinese": "Asian", "japanese": "Asian", "korean": "Asian", "vietnamese": "Asian",
    "thai": "Asian", "filipino": "Asian", "indian": "Asian", "east asian": "Asian", "south asian": "Asian",
    "middle eastern": "Middle Eastern", "arab": "Middle Eastern", "arabic": "Middle Eastern",
    "persian": "Middle Eastern", "iranian": "Middle Eastern", "turkish": "Middle Eastern",
    "egyptian": "Middle Eastern", "lebanese": "Middle Eastern", "syrian": "Middle Eastern",
    # Nationalities and peoples that fix the attribute without naming one of the values.
    "american": None, "british": None, "french": None, "german": None, "italian": None, "spanish": None,
    "russian": None, "nigerian": "Black", "kenyan": "Black", "ethiopian": "Black", "ghanaian": "Black",
    "native american": None, "indigenous": None, "aboriginal": None, "pacific islander": None, "jewish": None,
    "irish": None, "scottish": None, "polish": None, "greek": None, "swedish": None, "norwegian": None,
    "pakistani": "Asian", "bangladeshi": "Asian", "indonesian": "Asian", "malaysian": "Asian",
    "peruvian": "Latino-Hispanic", "argentinian": "Latino-Hispanic", "cuban": "Latino-Hispanic",
    "moroccan": "Middle Eastern", "saudi": "Middle Eastern", "israeli": "Middle Eastern",
    "inuit": None, "maori": None, "sami": None, "navajo": None, "cherokee": None, "hawaiian": None, "samoan": None,
    "tongan": None, "fijian": None, "polynesian": None, "tibetan": "Asian", "mongolian": "Asian", "nepali": "Asian",
    "nepalese": "Asian", "sri lankan": "Asian", "burmese": "Asian", "cambodian": "Asian", "taiwanese": "Asian",
    "hmong": "Asian", "uyghur": "Asian", "maasai": "Black", "masai": "Black", "zulu": "Black", "yoruba": "Black",
    "igbo": "Black", "somali": "Black", "bedouin": "Middle Eastern", "kurdish": "Middle Eastern",
    "berber": None, "quechua": None, "aymara": None, "romani": None, "roma": None,
}
# Capitalised words that begin places, brands and titles, not people's names.
NOT_NAMES = {
    "new", "york", "san", "los", "las", "angeles", "francisco", "city", "united", "states", "kingdom", "street",
    "avenue", "river", "lake", "mount", "mountain", "north", "south", "east", "west", "central", "grand",
    "canyon", "golden", "gate", "bridge", "times", "square", "eiffel", "tower", "great", "wall", "hong", "kong",
    "las", "vegas", "rio", "de", "janeiro", "saint", "st", "santa", "monica", "national", "museum", "university",
    "college", "school", "hospital", "church", "cathedral", "palace", "castle", "christmas", "easter", "halloween",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february", "march",
    "april", "may", "june", "july", "august", "september", "october", "november", "december", "star", "wars",
    "harry", "potter", "disney", "pixar", "marvel", "dc", "studio", "ghibli", "unreal", "engine", "octane",
    "render", "artstation", "trending", "on", "hd", "uhd", "the", "a", "an", "of", "in", "and", "art", "nouveau",
    "deco", "renaissance", "baroque", "van", "gogh", "da", "vinci", "greg", "rutkowski", "alphonse", "mucha",
    "middle", "eastern", "african", "american", "asian", "european", "latino", "black", "white", "photo",
}


@dataclass(frozen=True)
class Noun:
    singular: str
    plural: str
    gender: str | None = None
    role: str = ""  # the neutral role, for constraints
    age: str | None = None
    kind: str = "occupation"  # occupation | family | social: the roles.txt section


def _plural(word: str) -> str:
    last = word.split(" ")[-1]
    head = word[: len(word) - len(last)]
    if last.endswith(("s", "x", "z", "ch", "sh")):
        return head + last + "es"
    if last.endswith("y") and last[-2:-1] not in "aeiou":
        return head + last[:-1] + "ies"
    if last.endswith("man"):
        return head + last[:-3] + "men"
    if last.endswith("fe"):
        return head + last[:-2] + "ves"
    return head + last + "s"


#: Nouns that fix an age stage themselves.
ROLE_AGES = {
    "baby": "infancy", "infant": "infancy", "newborn": "infancy", "toddler": "infancy",
    "child": "childhood", "kid": "childhood", "boy": "childhood", "girl": "childhood",
    "schoolboy": "childhood", "schoolgirl": "childhood",
    "teenager": "adolescence", "teen": "adolescence", "adolescent": "adolescence",
}
FAMILY_ROLES = {"adult", "parent", "child", "sibling", "spouse", "partner", "grandparent", "grandchild", "relative"}


@lru_cache(maxsize=1)
def lexicon() -> dict[str, tuple[Noun, bool]]:
    """Every surface form -> (noun, is_plural)."""
    forms: dict[str, tuple[Noun, bool]] = {}
    base = resources.files("elens_bias")
    kinds: dict[str, str] = {}
    kind = "occupation"
    for line in base.joinpath("roles.txt").read_text().splitlines():
        line = line.strip()
        if line.startswith("# family"):
            kind = "family"
        elif line.startswith("# social"):
            kind = "social"
        if not line or line.startswith("#"):
            continue
        singular, _, plural = line.partition("|")
        noun = Noun(singular, plural or _plural(singular), role=singular, age=ROLE_AGES.get(singular), kind=kind)
        kinds.setdefault(singular, kind)
        forms.setdefault(singular, (noun, False))
        forms.setdefault(noun.plural, (noun, True))
    for line in base.joinpath("gendered.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        singular, plural, gender, *rest = line.split("|")
        role = rest[0] if rest else singular
        noun = Noun(singular, plural, gender=gender, role=role, age=ROLE_AGES.get(singular),
                    kind=kinds.get(role, "family" if role in FAMILY_ROLES else "social"))
        forms[singular] = (noun, False)
        forms[plural] = (noun, True)
    return forms


_TOKEN = re.compile(r"[A-Za-z][A-Za-z'’\-]*|\d+")
_WORD = re.compile(r"[^\W\d_]+")  # a run of letters, any script
_NAME_GAP = re.compile(r"\s+|\s*[-'’]\s*")  # between the words of a name: "Ocasio-Cortez", "O'Neal"
