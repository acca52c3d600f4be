"""Word lists for the synthetic-corpus sentence generator, written for myna (not taken from any corpus).

Chosen for phoneme coverage as well as variety: voiced and voiceless fricatives (vision, measure,
thistle, these), affricates (cheese, judge), diphthongs (noise, mouse, bike), syllabic consonants and
nasals (bottle, singing). Verbs are `base/past` pairs; the third person is derived by rule.
"""

from __future__ import annotations

NAMES = (
    "Alice Bruno Carmen Dmitri Esther Farid Greta Hiroshi Imogen Jasper Keziah Lionel Marisol Nadia "
    "Oswald Priya Quentin Rosalind Sven Tabitha Ursula Victor Wendell Xavier Yolanda Zachary Beatrix "
    "Cedric Delphine Ezra Fiona Gideon Harriet Ignatius Juniper Lorenzo Matilda Nathaniel Ophelia Percy"
).split()

PLACES = (
    "kitchen;garden;harbour;library;station;bakery;museum;workshop;village square;hospital;"
    "laboratory;train platform;lighthouse;orchard;garage;classroom;theatre;market;post office;"
    "bridge;farmhouse;canal;hotel lobby;chess club;dentist's office;mountain cabin;fish market"
).split(";")

NOUNS = (
    "apple;bottle;blanket;bicycle;candle;chair;cheese;clock;compass;cushion;drawer;engine;envelope;"
    "feather;fence;guitar;hammer;helmet;jacket;journal;kettle;ladder;lantern;leather bag;map;mirror;"
    "needle;notebook;orange;oyster;package;pencil;piano;pillow;puzzle;radio;ribbon;saucer;scissors;"
    "shovel;spoon;suitcase;telescope;thimble;ticket;treasure;trumpet;umbrella;vase;violin;wagon;"
    "wallet;whistle;window;yoghurt;zipper;measuring tape;television;garage door;beige sweater;"
    "birthday cake;thunderstorm;voyage;question;answer;noise;toy boat;mouse;judge's hat;usual route"
).split(";")

ADJECTIVES = (
    "ancient bright broken careful cheerful chilly clever crooked curious damp delicate dusty eager "
    "enormous faded fragile freezing gentle gloomy golden heavy hollow humble jagged joyful lazy "
    "lonely loud muddy narrow noisy peculiar polished purple quiet rusty shiny silent smooth soft "
    "sturdy tiny tidy vivid warm wobbly wooden yellow thoughtful ordinary enthusiastic"
).split()

ADVERBS = (
    "quickly slowly carefully quietly gently loudly eagerly patiently suddenly happily nervously "
    "thoroughly politely reluctantly cautiously honestly proudly"
).split()

# base/past; chosen so that "NAME verb-past the NOUN" and "please verb the NOUN" both read naturally
VERBS = (
    "borrow/borrowed bring/brought buy/bought carry/carried check/checked choose/chose clean/cleaned "
    "close/closed cover/covered drop/dropped find/found fix/fixed hide/hid hold/held lift/lifted "
    "measure/measured move/moved open/opened paint/painted pack/packed polish/polished push/pushed "
    "repair/repaired return/returned sell/sold shake/shook sketch/sketched throw/threw wash/washed "
    "weigh/weighed wrap/wrapped judge/judged examine/examined describe/described forget/forgot"
).split()

TIMES = (
    "this morning;last night;at noon;before breakfast;after lunch;on Tuesday;on a rainy Sunday;"
    "every Thursday;in the spring;at midnight;yesterday afternoon;next weekend;in early autumn;"
    "during the storm;right before the meeting;on Friday evening;once a month"
).split(";")

MONTHS = "January February March April May June July August September October November December".split()

UNITS = "kilometres;metres;litres;kilograms;minutes;hours;pages;steps;boxes;apples;people;birds;coins".split(";")

FEELINGS = (
    "surprised;delighted;worried;puzzled;relieved;exhausted;thrilled;annoyed;amused;confused;grateful"
).split(";")

CONNECTIVES = (", and", ", but", ", so", " because", " although", " while", ", even though", " until")

OPENERS = (
    "Honestly,;Meanwhile,;In fact,;Of course,;Luckily,;As usual,;By the way,;Strangely enough,;"
    "To be fair,;At first,;Later on,;Unfortunately,;In the end,"
).split(";")

INTERJECTIONS = "Oh;Well;Wow;Hmm;Look;Listen;Wait;Alright;Goodness".split(";")
