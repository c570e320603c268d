"""Find the people in a prompt and which of their attributes the prompt leaves open.

A *cluster* is one person reference ("a nurse", "five teachers", "Taylor Swift").
Its type follows Ethical-Lens: 0 = nothing to diversify (a named person, or every
attribute fixed), 1 = one person with open attributes, 2 = a group with open
attributes. Pure Python and data files; no model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from .names import _ARTICLE_BEFORE, named_people, names_as_written
from .vocabulary import (AGE_WORDS, DETERMINERS, GENDER_WORDS, GROUP_WORDS, NUMBERS, PRONOUNS, RACE_WORDS,
                         Noun, _TOKEN, lexicon)


@dataclass
class Cluster:
    id: str
    text: str
    start: int
    end: int  # end of the noun
    noun: Noun
    count: int  # 1, or the group size (0 when unknown but plural)
    fixed: dict[str, str | None] = field(default_factory=dict)
    open: list[str] = field(default_factory=list)
    named: bool = False
    insert_at: int = 0  # where attribute words go (just before the noun)
    attr_words: list = field(default_factory=list)  # (start, end, attribute, text) already in the prompt
    det_start: int | None = None  # the article to fix, if any
    type: int = 0

    def record(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "span": [self.start, self.end], "type": self.type,
                "role": self.noun.role or self.noun.singular, "count": self.count or None,
                "fixed": dict(self.fixed), "open": list(self.open), "named": self.named}


def _words_rx(table: dict) -> re.Pattern:
    body = "|".join(re.escape(w) for w in sorted(table, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{body})(?![\w-])", re.IGNORECASE)


_ATTR_RX = [("age", _words_rx(AGE_WORDS), AGE_WORDS), ("race", _words_rx(RACE_WORDS), RACE_WORDS),
            ("gender", _words_rx(GENDER_WORDS), GENDER_WORDS)]


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    form: str


# After "a doctor's", the parts of a person that show one in the picture.
_BODY_AFTER = re.compile(r"\s+(?:\w+\s+)?(?:hands?|fingers?|face|eyes?|back|arms?|legs?|feet|foot|hair|head|"
                         r"shoulders?|lips|mouth|smile|silhouette|reflection|profile|portrait|body)\b", re.IGNORECASE)


def _nouns(prompt: str) -> list[_Hit]:
    """Person nouns by longest match over 1- to 3-word windows (a dictionary lookup, no regex)."""
    forms = lexicon()
    tokens = list(_TOKEN.finditer(prompt))
    hits, i = [], 0
    while i < len(tokens):
        for size in (3, 2, 1):
            window = tokens[i:i + size]
            if len(window) < size:
                continue
            gaps = [prompt[a.end():b.start()] for a, b in zip(window, window[1:])]
            if any(g.strip() for g in gaps):
                continue
            form = " ".join(t.group(0).lower() for t in window)
            # "a doctor's hands": the doctor, without the "'s" (the token regex keeps "'")
            form = form.replace("’", "'")
            owner = form.removesuffix("'s").removesuffix("'") if form.endswith(("'s", "s'")) else form
            if owner != form and not _BODY_AFTER.match(prompt, window[-1].end()):
                owner = form  # "a teacher's desk in an empty classroom": no teacher
            if form in forms or owner in forms:
                hits.append(_Hit(window[0].start(), window[-1].end() - len(form) + len(owner),
                                 form if form in forms else owner))
                i += size
                break
        else:
            i += 1
    return hits


# A clause ends at punctuation: the words before it modify no noun after it.
_CLAUSE_BREAK = re.compile(r"[,;:.!?()\[\]{}|\n]")
#: Characters, titles and things whose name holds a person noun, no one to diversify
#: ("wonder woman", "blade runner style", "a german shepherd"): a character is as
#: fixed as a named person.
NOT_PEOPLE = (
    "german shepherd", "australian shepherd", "grandfather clock", "secretary bird", "pilot whale", "pilot fish",
    "gingerbread man", "gingerbread men", "burger king", "roadside diner", "snow angel", "sand dollar",
    "wonder woman", "iron man", "ant man", "ant-man", "spider man", "spider woman", "bat man", "he man", "he-man",
    "pac man", "pac-man", "blade runner", "snow white", "sleeping beauty",
    "the little mermaid", "the invisible man", "the elephant man", "the old man and the sea", "the tin man",
    "the girl with a pearl earring", "girl with a pearl earring", "the grim reaper", "grim reaper",
    "father christmas", "mother nature", "uncle sam", "lady liberty", "the tooth fairy", "the godfather",
    "doctor strange", "the wicked witch", "the mad hatter", "captain america", "captain marvel",
    "the mandalorian", "the witcher", "the terminator", "the joker", "the little prince", "prince of persia",
    "the last samurai", "the night king", "the dark knight", "the pied piper", "peter pan",
)
#: Titles that are everyday words in lower case ("a doctor who is tired", "two mad men
#: arguing"): only as written here.
TITLES_AS_WRITTEN = ("Doctor Who", "Mad Men", "Rain Man", "Black Widow", "The Thinker", "The Scream")
_NOT_PEOPLE = re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(c) for c in sorted(NOT_PEOPLE, key=len, reverse=True))
                         + r")(?![\w-])", re.IGNORECASE)
_TITLES_AS_WRITTEN = re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(t) for t in TITLES_AS_WRITTEN) + r")(?![\w-])")


_QUOTED = re.compile(r'"[^"\n]*"|“[^”\n]*”|\b(?:says|saying|reads|reading|words?|text|titled|caption(?:ed)?)'
                     r"\s*:?\s*['‘][^'’\n]*(?:['’](?!\w)|$)", re.IGNORECASE)
_NONE_BEFORE = re.compile(r"\b(?:no|without)\s+$", re.IGNORECASE)
#: Nouns that make the person noun before them a modifier: "guide dog", "astronaut
#: suit", "passenger seat", "pedestrian bridge", "nurse shark", "student loan".
COMPOUND_HEADS = (
    "dog", "seat", "suit", "bridge", "hat", "helmet", "uniform", "costume", "outfit", "boots", "shoes",
    "jacket", "vest", "badge", "shark", "ant", "bee", "fish", "car", "truck", "van", "boat", "ship", "plane", "house",
    "office", "desk", "room", "station", "school", "academy", "license", "licence", "loan", "card", "statue",
    "figurine", "doll", "toy", "mask", "gear", "kit", "bag", "backpack", "logo", "icon", "emoji", "sticker",
    "day", "appreciation", "lounge", "cabin", "quarters", "village", "entrance", "exam", "lane",
    "restroom", "bathroom", "toilet", "locker", "ID", "id", "glove", "gloves", "boot", "cap", "armor", "armour",
    "sword", "flag", "jersey", "knife", "wharf", "camera", "star", "hunt", "piano",
    # animals ("a baby dragon", "a mother bear") and anatomy ("the human heart")
    "dragon", "bear", "cub", "bird", "cat", "kitten", "puppy", "horse", "pony", "elephant", "lion", "tiger", "wolf",
    "deer", "monkey", "whale", "dolphin", "penguin", "owl", "duck", "goat", "sheep", "pig", "cow", "chick", "robot",
    "heart", "brain", "skull", "skeleton", "anatomy", "cell", "tooth", "teeth", "bone", "organ", "body", "skin",
)
_COMPOUND_AFTER = re.compile(r"(?:\s+|-)(?:" + "|".join(COMPOUND_HEADS) + r")s?\b|-(?:themed|shaped|style)\b",
                             re.IGNORECASE)


#: Words that make the role after them no human: "a giant skeleton king", "a cat chef".
NOT_HUMAN = (
    "skeleton", "zombie", "robot", "android", "cyborg", "alien", "vampire", "ghost", "elf", "orc", "goblin",
    "undead", "demon", "lizard", "frog", "cat", "dog", "fox", "wolf", "bear", "rabbit", "bunny", "mouse", "rat",
    "monkey", "ape", "penguin", "owl", "dragon", "snowman", "mannequin", "lego", "teddy", "raccoon", "hamster",
    "squirrel", "otter", "hedgehog", "badger", "duck", "pig", "cow", "sheep", "goat", "horse", "lion", "tiger",
    "panda", "koala", "sloth", "turtle", "octopus", "shark", "bird", "chicken", "puppy", "kitten", "gingerbread",
    "plush", "toy", "puppet", "doll", "mushroom", "bee", "ant", "insect", "bug", "slime", "pumpkin",
)
#: Roles that work with animals, human however they begin: "a dog walker", "a lion tamer".
ANIMAL_JOBS = {"walker", "trainer", "groomer", "sitter", "breeder", "owner", "catcher", "handler", "keeper", "rider",
               "tamer", "hunter", "herder", "shepherd", "farmer", "charmer", "whisperer", "lover", "vet", "engineer",
               "photographer", "researcher", "scientist", "designer", "jockey", "writer", "biologist", "expert",
               "specialist", "collector", "maker", "builder", "enthusiast", "watcher", "rescuer", "doctor"}
_NOT_HUMAN_BEFORE = re.compile(r"\b(?:" + "|".join(NOT_HUMAN) + r")s? $", re.IGNORECASE)


#: Common describing words that no suffix marks ("a blind man", "an old woman").
ADJECTIVES = {
    "old", "young", "tall", "short", "big", "small", "little", "tiny", "huge", "blind", "deaf", "happy", "sad",
    "angry", "pretty", "cute", "brave", "strong", "wise", "kind", "proud", "busy", "fat", "thin", "slim", "skinny",
    "bald", "rich", "poor", "sick", "ill", "good", "bad", "great", "nice", "fine", "lone", "lonely", "shy", "calm",
    "quiet", "loud", "smart", "cool", "warm", "cold", "wet", "dry", "new", "real", "main", "fit", "pregnant",
    "handsome", "elegant", "modern", "vintage", "ancient", "medieval", "futuristic", "retro", "stern", "wild",
    "bored", "tired", "weary", "fierce", "gentle", "grumpy", "jolly", "mysterious", "famous", "legendary",
    "heroic", "noble", "royal", "female", "male", "single", "lead", "head", "chief", "senior", "junior",
    "sleepy", "scary", "creepy", "funny", "silly", "hairy",
    "curly", "sweaty", "dirty", "muddy", "chubby", "messy", "cheeky", "nerdy", "geeky", "scruffy", "lucky",
    "healthy", "wealthy", "heavy", "lazy", "crazy", "ugly", "brilliant", "confident", "athletic",
    "energetic", "enthusiastic", "gothic", "exotic", "iconic", "romantic", "realistic", "eccentric", "stoic",
    "majestic", "artistic", "academic", "authentic",
}
# Adjective endings; not "-y" ("chemistry", "army") nor "-ic" ("music"), and not "-al":
# a kind ("a medical doctor") goes after age and race, as a noun's kind does.
_ADJECTIVE_END = re.compile(r"(?:ful|ous|ive|able|ible|less|ish|ed|ing|est|ly)$")


def _describes(word: str) -> bool:
    """A word that describes (an adjective, most likely), not one that names a kind."""
    w = word.lower()
    return w in ADJECTIVES or len(w) > 3 and bool(_ADJECTIVE_END.search(w)) or "-" in w


#: Words that end a noun phrase's modifiers, as a determiner does: "another doctor", "the first astronaut".
PHRASE_STARTS = {"of", "with", "and", "or", "by", "for", "to", "at", "in", "on", "another", "other", "same",
                 "first", "second", "third", "last", "next", "only"}


_KIND_GAP = re.compile(r" (?:" + "|".join(COMPOUND_HEADS) + r") ", re.IGNORECASE)


def _one_person(prompt: str, a: _Hit, b: _Hit) -> bool:
    """Person nouns ``a`` and ``b`` are one person (or group), ``b``: "a woman
    scientist", "a woman sheep herder" (one kind-word between them), "twin brothers";
    not "a woman cooks", "parents cook" (a verb)."""
    gap = prompt[a.end:b.start]
    if gap != " " and not _KIND_GAP.fullmatch(gap) or lexicon()[a.form][1]:
        return False
    return not lexicon()[b.form][1] or not _ARTICLE_BEFORE.search(prompt, max(0, a.start - 4), a.start)


def find_clusters(prompt: str, attributes: list[str], public_figures: Iterable[str],
                  extra_names: Iterable[tuple[int, int, str, float]] = ()) -> tuple[list[Cluster], list]:
    """The people clusters of ``prompt`` and the named people found in it.

    ``extra_names`` are (start, end, name, score) spans another finder (NER) found.
    """
    names = named_people(prompt, public_figures, extra_names)
    clusters: list[Cluster] = []
    lowered = prompt.lower()
    # no people: characters and things named after people, words in quotes (text to
    # draw: a sign saying "Joe's Diner", a shirt that says 'Best Mom Ever')
    elsewhere = [c.span() for rx in (_NOT_PEOPLE, _TITLES_AS_WRITTEN, _QUOTED) for c in rx.finditer(prompt)]
    elsewhere += names_as_written(prompt)[1]
    hits = _nouns(prompt)
    # "a woman scientist", "a woman sheep herder": one person, the last noun (the
    # first fixes her gender); "a woman cooks", "parents cook" are a verb's subjects
    into = {k: k + 1 for k in range(len(hits) - 1) if _one_person(prompt, hits[k], hits[k + 1])}
    verbs: set[int] = set()
    for k, m in enumerate(hits):
        if any(s <= m.start < e for s, e, _, _ in names) or any(s <= m.start < e for s, e in elsewhere):
            continue
        if k in into:
            continue
        if k and k - 1 not in into and k - 1 not in verbs and prompt[hits[k - 1].end:m.start] == " ":
            verbs.add(k)  # a verb after its subject: "parents cook dinner", "a woman cooks"
            continue
        if _COMPOUND_AFTER.match(prompt, m.end):  # "a guide dog", "an astronaut suit": no person
            continue
        if any(0 <= s - m.end <= 1 for s, _e, _n, _sc in names):  # "my classmate Aiden Park": a named person
            continue
        first = k  # the first of the person nouns that make this one ("Raccoon Pirate Captain")
        while first - 1 in into:
            first -= 1
        # the few whole words before ("a giant skeleton", "no"), not the whole prompt before
        near = prompt[prompt.rfind(" ", 0, max(0, hits[first].start - 40)) + 1:hits[first].start]
        if _NOT_HUMAN_BEFORE.search(near) and m.form not in ANIMAL_JOBS:  # "a cat chef"
            continue
        if _NONE_BEFORE.search(near):  # "no humans", "without people": a tag for nobody
            continue
        noun, plural = lexicon()[m.form]
        fixed: dict[str, str | None] = {}
        if noun.gender:
            fixed["gender"] = noun.gender
        if noun.age:
            fixed["age"] = noun.age
        for j in range(first, k):
            before_noun = lexicon()[hits[j].form][0]
            for attr, value in (("gender", before_noun.gender), ("age", before_noun.age)):
                if value:
                    fixed.setdefault(attr, value)
        # Modifiers: the words between the determiner (or clause start) and the noun.
        left = prompt[: m.start]
        words = list(_TOKEN.finditer(left))[-5:]  # a noun phrase's modifiers are few
        det_start = None
        modifiers: list[re.Match] = []
        following = m.start
        # Where the noun phrase begins: a determiner, a preposition, a clause edge or the
        # prompt's start; not another person ("doctor examines patient").
        phrase_start = len(words) < 5
        for w in reversed(words):
            token = w.group(0).lower()
            if _CLAUSE_BREAK.search(prompt, w.end(), following):  # "at night, blade runner": not "night"
                phrase_start = True
                break
            if w.start() < hits[first].start and any(h.start <= w.start() < h.end for h in hits):
                phrase_start = False
                break
            following = w.start()
            if token in DETERMINERS or token in PHRASE_STARTS:
                if token in ("a", "an"):
                    det_start = w.start()
                phrase_start = True
                break
            modifiers.insert(0, w)
        attr_words: list[tuple[int, int, str, str]] = []
        if modifiers:
            span_start = modifiers[0].start()
            for attr, rx, table in _ATTR_RX:
                for hit in rx.finditer(prompt, span_start, m.start):
                    if attr == "age" and attr not in {a for _s, _e, a, _t in attr_words}:
                        fixed["age"] = table[hit.group(0).lower()]  # "teenage boy": the word beats the noun
                    else:
                        fixed.setdefault(attr, table[hit.group(0).lower()])
                    attr_words.append((hit.start(), hit.end(), attr, hit.group(0)))
        count = 1
        if plural:
            count = 0
            prev = [w.group(0).lower() for w in words]
            for token in reversed(prev[-3:]):
                if token.isdigit():
                    count = int(token)
                    break
                if token in NUMBERS:
                    count = NUMBERS[token]
                    break
        else:
            before = lowered[max(0, m.start - 30):m.start]
            group = re.search(r"\b(" + "|".join(GROUP_WORDS) + r")\s+of\s+$", before)
            if group:
                plural, count = True, 0
        # The values go after the describing words and before the nouns that say what
        # kind of role it is: "a friendly middle-aged Asian sushi chef", not "a friendly
        # sushi middle-aged Asian chef".
        insert_at = m.start
        for w in reversed(modifiers if phrase_start else ()):
            if _describes(w.group(0)) or any(s <= w.start() < e for s, e, _a, _t in attr_words):
                break
            insert_at = w.start()
        clusters.append(Cluster(
            id=f"p{len(clusters)}", text=prompt[(modifiers[0].start() if modifiers else m.start):m.end],
            start=modifiers[0].start() if modifiers else m.start, end=m.end, noun=noun,
            count=count if not plural else (count or 0), fixed=fixed, insert_at=insert_at, det_start=det_start,
            attr_words=sorted(attr_words),
        ))
        clusters[-1].type = 2 if plural else 1
    singles = [c for c in clusters if c.type == 1]
    if len(singles) == 1 and "gender" not in singles[0].fixed:
        for token in _TOKEN.findall(lowered):
            if token in PRONOUNS:
                singles[0].fixed["gender"] = PRONOUNS[token]
                break
    for c in clusters:
        c.open = [a for a in attributes if a not in c.fixed]
        if not c.open:
            c.type = 0
    return clusters, names
