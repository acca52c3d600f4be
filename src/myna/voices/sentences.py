"""Consent challenge sentences: a fixed consent clause and a random, unguessable sentence per language.

The random part is drawn with the system's secure generator from small lists of common, easily
recognised words (no numbers, few homophones), so nobody can record it before asking, and a
speech recogniser as small as Whisper tiny reads it reliably. Each language has at least 6 million
combinations; a challenge is valid for minutes and used once, so that is plenty.
"""

from __future__ import annotations

import secrets

CONSENT_CLAUSE = {
    "en": "I agree that my voice may be cloned.",
    "zh": "我同意克隆我的声音。",
    "ja": "私は自分の声の複製に同意します。",
}

_EN = {
    "adjective": ("curious", "gentle", "clever", "sleepy", "brave", "quiet", "cheerful", "careful", "hungry",
                  "friendly", "patient", "noisy", "lazy", "busy", "tiny", "happy"),
    "color": ("purple", "orange", "yellow", "silver", "golden", "green", "brown", "pink", "white", "black"),
    "animal": ("rabbits", "foxes", "turtles", "horses", "tigers", "monkeys", "penguins", "dolphins", "parrots",
               "camels", "zebras", "lions", "puppies", "kittens", "squirrels", "elephants"),
    "verb": ("painted", "carried", "repaired", "cleaned", "followed", "visited", "discovered", "borrowed",
             "guarded", "decorated", "climbed", "measured"),
    "thing": ("the wooden ladder", "the old bridge", "the kitchen table", "the garden fence", "the large basket",
              "the broken clock", "the paper lantern", "the stone tower", "the summer cabin", "the fishing boat",
              "the music box", "the winter coat"),
    "place": ("near the river", "behind the library", "beside the market", "inside the museum",
              "across the valley", "under the mountain", "around the harbor", "outside the station"),
    "time": ("on Monday", "on Tuesday", "on Wednesday", "on Thursday", "on Friday", "on Saturday", "on Sunday",
             "every morning", "last winter", "this evening"),
}
_ZH = {
    "time": ("星期一早上", "星期二下午", "星期三晚上", "星期四中午", "星期五早上", "昨天晚上", "今天下午", "去年冬天",
             "明天早上", "上个月"),
    "adjective": ("勇敢的", "安静的", "聪明的", "快乐的", "认真的", "友好的", "可爱的", "勤劳的", "好奇的", "胆小的"),
    "animal": ("小猫", "小狗", "兔子", "熊猫", "老虎", "猴子", "大象", "狐狸", "鸭子", "松鼠", "企鹅", "海豚"),
    "place": ("在图书馆旁边", "在河边", "在市场里", "在山上", "在公园里", "在学校门口", "在火车站外面", "在博物馆里"),
    "adverb": ("慢慢地", "悄悄地", "认真地", "很快地", "小心地", "高高兴兴地", "一起", "独自"),
    "verb": ("修理了", "打扫了", "画了", "搬走了", "找到了", "借走了", "送来了", "装饰了"),
    "thing": ("一把木头梯子", "一张旧桌子", "一个大篮子", "一座石头塔", "一只纸灯笼", "一条小船", "一个音乐盒",
              "一件冬天的外套", "一面红旗", "一辆自行车"),
}
_JA = {
    "time": ("月曜日の朝", "火曜日の午後", "水曜日の夜", "木曜日の昼", "金曜日の朝", "昨日の夜", "今日の午後",
             "去年の冬", "明日の朝", "先月"),
    "adjective": ("元気な", "静かな", "かしこい", "やさしい", "小さな", "大きな", "かわいい", "まじめな", "勇敢な",
                  "おとなしい"),
    "animal": ("ネコ", "イヌ", "ウサギ", "パンダ", "トラ", "サル", "ゾウ", "キツネ", "アヒル", "リス", "ペンギン",
               "イルカ"),
    "place": ("図書館の前で", "川のそばで", "市場で", "山の上で", "公園で", "学校の門で", "駅の外で", "博物館で"),
    "thing": ("木のはしご", "古いテーブル", "大きなかご", "石の塔", "紙のちょうちん", "小さな船", "オルゴール",
              "冬のコート", "赤い旗", "自転車"),
    "adverb": ("ゆっくり", "こっそり", "すぐに", "ていねいに", "楽しそうに", "一人で", "みんなで", "静かに"),
    "verb": ("直しました", "きれいにしました", "描きました", "運びました", "見つけました", "借りました", "届けました",
             "飾りました"),
}

LANGUAGES = tuple(CONSENT_CLAUSE)


def random_sentence(language: str) -> str:
    """A new random sentence in `language` (en, zh, ja), without the consent clause."""
    pick = secrets.choice
    if language == "en":
        w = {slot: pick(words) for slot, words in _EN.items()}
        return (f"{w['adjective'].capitalize()} {w['color']} {w['animal']} {w['verb']} {w['thing']} {w['place']} "
                f"{w['time']}.")
    if language == "zh":
        w = {slot: pick(words) for slot, words in _ZH.items()}
        return f"{w['time']}，{w['adjective']}{w['animal']}{w['place']}{w['adverb']}{w['verb']}{w['thing']}。"
    if language == "ja":
        w = {slot: pick(words) for slot, words in _JA.items()}
        return f"{w['time']}、{w['adjective']}{w['animal']}が{w['place']}{w['thing']}を{w['adverb']}{w['verb']}。"
    raise ValueError(f"no challenge sentences for {language!r}; expected one of {', '.join(LANGUAGES)}")


def challenge_text(language: str) -> str:
    """What the speaker reads: the consent clause, then a new random sentence."""
    separator = " " if language == "en" else ""
    return CONSENT_CLAUSE[language] + separator + random_sentence(language)


def combinations(language: str) -> int:
    """How many different random sentences `language` has."""
    table = {"en": _EN, "zh": _ZH, "ja": _JA}[language]
    total = 1
    for words in table.values():
        total *= len(words)
    return total
