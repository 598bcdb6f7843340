"""Name lists for the synthetic population: frequency-weighted forenames and surnames per naming culture.

Written for this project (no external list): weights are rough relative frequencies chosen so that a few
surnames dominate, as in Leicester (Patel, Singh/Kaur, Khan, Begum, Mistry, Parmar alongside Smith and
Jones), which is what makes term-frequency adjustment in Splink matter. Each list is a string of
``Name:weight`` items; a weight of 1 is a rare name.
"""

from __future__ import annotations

from functools import cache

import numpy as np

# --- cultures: which name lists a person of an ethnicity draws from ---------------------------------------
# (culture, weight) per 18+1 ethnicity code. South Asian Indian splits into Gujarati Hindu, Sikh and
# Gujarati Muslim families, the three large Leicester communities.
CULTURE_BY_ETHNICITY: dict[str, list[tuple[str, float]]] = {
    "W1": [("british", 1.0)], "W2": [("irish", 1.0)], "W3": [("british", 1.0)],
    "W9": [("east_european", 0.8), ("british", 0.2)],
    "M1": [("british", 0.6), ("caribbean", 0.4)], "M2": [("british", 0.6), ("west_african", 0.4)],
    "M3": [("british", 0.5), ("gujarati", 0.25), ("muslim_sa", 0.25)], "M9": [("british", 0.7), ("arab", 0.3)],
    "A1": [("gujarati", 0.62), ("sikh", 0.26), ("muslim_sa", 0.12)], "A2": [("muslim_sa", 1.0)],
    "A3": [("bangladeshi", 1.0)], "A4": [("chinese", 1.0)], "A9": [("gujarati", 0.4), ("muslim_sa", 0.6)],
    "B1": [("caribbean", 1.0)], "B2": [("somali", 0.55), ("west_african", 0.45)], "B9": [("caribbean", 1.0)],
    "O1": [("arab", 1.0)], "O9": [("arab", 0.4), ("british", 0.3), ("east_european", 0.3)],
}

_MALE = {
    "british": "Jack:30 Thomas:28 Joshua:26 James:26 Daniel:24 Oliver:20 Harry:20 Samuel:18 William:18 "
               "Callum:15 Ryan:15 Liam:14 Connor:14 Jordan:13 Luke:13 Matthew:13 Lewis:12 Alex:10 Ethan:12 "
               "Charlie:12 Jake:12 Kieran:9 Bradley:9 Jamie:9 Reece:8 Tyler:8 George:12 Alfie:9 Mason:8 "
               "Kyle:7 Dylan:8 Ben:6 Nathan:10 Adam:9 Aaron:7 Owen:6 Michael:12 Christopher:10 Jonathan:5 "
               "Robert:6 Joseph:10 Benjamin:9 Jayden:6 Leon:4 Shane:3 Dean:3 Brandon:5 Cameron:6",
    "irish": "Sean:12 Conor:10 Patrick:10 Ciaran:7 Liam:8 Michael:10 Niall:5 Declan:5 Aidan:6 Jack:10 "
             "Ryan:8 Eoin:3 Cian:3 Darragh:2 James:8",
    "east_european": "Jakub:12 Kacper:10 Szymon:8 Filip:8 Mateusz:8 Bartosz:7 Dawid:7 Adrian:6 Oliwer:5 "
                     "Lukas:6 Andrei:6 Mihai:5 Tomasz:6 Piotr:5 Marek:4 Daniel:6",
    "gujarati": "Rohan:10 Raj:10 Jay:9 Nikhil:8 Kishan:8 Krish:7 Dhruv:7 Arjun:7 Ravi:7 Sunil:6 Vishal:6 "
                "Karan:6 Rahul:7 Amit:6 Hitesh:5 Ketan:5 Nilesh:5 Paresh:4 Pritesh:4 Jignesh:4 Yash:5 "
                "Dev:5 Anish:4 Hemant:3 Milan:4 Parth:4",
    "sikh": "Gurpreet:10 Harpreet:9 Jaspreet:8 Manpreet:8 Sukhvinder:6 Kulwinder:5 Jasbir:5 Amrit:6 "
            "Harjit:5 Ranjit:5 Arjan:5 Gurdeep:6 Jasdeep:5 Simran:4 Taranjit:4 Parminder:4 Navdeep:5 "
            "Hardeep:5 Rajinder:4 Inderjit:3",
    "muslim_sa": "Mohammed:40 Muhammad:14 Ali:12 Ibrahim:10 Yusuf:10 Hamza:10 Bilal:9 Imran:8 Usman:8 "
                 "Adam:9 Zain:8 Ayaan:7 Hassan:8 Hussain:7 Abdul:8 Omar:8 Asif:5 Faisal:5 Tariq:4 "
                 "Zakariya:5 Irfan:5 Kamran:4 Salman:4 Arslan:3 Suleman:4 Ismail:6",
    "bangladeshi": "Mohammed:30 Abdul:15 Rahim:6 Shahid:6 Jamal:6 Rahman:5 Sabbir:4 Tanvir:5 Rayhan:5 "
                   "Arif:5 Habib:4 Nazmul:4 Shafiq:3 Ayaan:5 Ibrahim:6 Yusuf:5",
    "caribbean": "Tyrone:8 Jermaine:7 Marcus:9 Andre:8 Jerome:6 Kemar:5 Dwayne:6 Jordan:9 Isaiah:7 "
                 "Malachi:6 Joshua:10 Daniel:9 Nathaniel:6 Elijah:7 Tyler:6 Kai:6 Leon:5",
    "somali": "Mohamed:30 Abdi:15 Abdirahman:10 Ahmed:12 Hassan:10 Yusuf:8 Omar:8 Abdullahi:9 Ismail:6 "
              "Mustafa:6 Hamza:5 Khalid:5 Liban:4 Guled:4 Bashir:4",
    "west_african": "Emmanuel:9 David:9 Daniel:8 Samuel:8 Joshua:8 Tobi:6 Chidi:5 Kwame:5 Kofi:5 "
                    "Oluwaseun:4 Tunde:5 Femi:5 Chinedu:4 Ifeanyi:3 Victor:6 Precious:2 Michael:7",
    "chinese": "Wei:8 Jun:7 Hao:6 Jian:6 Ming:6 Kevin:5 Jason:5 Yi:5 Chen:4 Tao:4 Lei:4 Bo:3",
    "arab": "Mohammed:20 Ahmad:10 Omar:9 Ali:9 Youssef:7 Khaled:6 Karim:6 Hamza:6 Tariq:5 Samir:5 "
            "Rami:4 Ziad:4 Adel:4",
}
_FEMALE = {
    "british": "Chloe:28 Emily:28 Jessica:26 Sophie:26 Megan:22 Lauren:22 Olivia:20 Amy:18 Hannah:18 "
               "Ellie:18 Charlotte:18 Lucy:16 Grace:15 Holly:12 Katie:14 Rebecca:12 Bethany:12 Georgia:11 "
               "Abigail:10 Paige:10 Shannon:9 Jade:9 Courtney:8 Leah:10 Amelia:10 Isla:8 Ruby:8 Mia:9 "
               "Evie:8 Millie:9 Lily:10 Poppy:7 Molly:9 Eleanor:6 Zoe:8 Danielle:6 Stacey:4 Kayleigh:5 "
               "Natalie:5 Rachel:6 Samantha:6 Emma:12 Laura:8 Sarah:9 Leanne:3 Kelly:4",
    "irish": "Siobhan:8 Aoife:7 Ciara:8 Niamh:8 Roisin:5 Orla:5 Caitlin:9 Erin:9 Mary:6 Bridget:3 "
             "Sinead:4 Megan:6 Emma:6",
    "east_european": "Julia:10 Zuzanna:8 Maja:8 Wiktoria:7 Natalia:8 Oliwia:7 Amelia:7 Alicja:6 "
                     "Lena:6 Ana:6 Maria:7 Ioana:5 Agnieszka:4 Kasia:4",
    "gujarati": "Priya:12 Pooja:10 Nisha:9 Riya:9 Anjali:8 Kajal:7 Reena:6 Shreya:7 Hetal:5 Bhavna:5 "
                "Krupa:4 Nikita:6 Meera:6 Dipti:4 Jyoti:5 Komal:5 Sonal:4 Trupti:3 Janki:3 Mansi:4",
    "sikh": "Harpreet:9 Gurpreet:8 Jaspreet:8 Manpreet:8 Simran:9 Amrit:6 Navdeep:5 Kiran:7 Jasleen:6 "
            "Rajvinder:4 Sukhjit:4 Parminder:5 Harleen:5 Mandeep:5 Balvinder:3 Jasvir:4",
    "muslim_sa": "Fatima:14 Aisha:14 Maryam:12 Zainab:10 Ayesha:9 Hafsa:7 Sana:7 Amina:8 Khadija:7 "
                 "Safiya:6 Zara:9 Iqra:6 Noor:6 Samira:5 Yasmin:7 Nadia:6 Shazia:4 Rukhsana:3 Sadia:5 "
                 "Hira:4 Mariam:6 Inaya:5",
    "bangladeshi": "Fatema:10 Sumaiya:7 Tahmina:6 Nusrat:7 Farzana:6 Shirin:5 Rokeya:4 Jannat:6 "
                   "Aysha:7 Sabrina:6 Tasnim:6 Runa:4 Shapla:3",
    "caribbean": "Shanice:8 Chantelle:7 Tia:8 Jasmine:8 Kiara:7 Aaliyah:7 Leah:7 Shakira:5 Jade:6 "
                 "Monique:5 Keisha:5 Amber:6 Naomi:6 Destiny:4",
    "somali": "Fadumo:10 Hodan:8 Ayaan:7 Hibo:6 Ifrah:6 Amina:10 Sahra:6 Muna:5 Nimco:5 Hamdi:5 "
              "Ubah:4 Farhia:4 Ikran:4 Deeqa:4",
    "west_african": "Blessing:8 Grace:8 Esther:7 Favour:6 Chioma:5 Ama:5 Abena:5 Adaeze:4 Funmi:5 "
                    "Precious:5 Deborah:6 Joy:6 Ruth:5 Temi:4",
    "chinese": "Mei:8 Xin:6 Li:6 Ying:6 Jing:5 Hui:5 Fang:4 Amy:5 Jenny:5 Lily:4 Yan:4",
    "arab": "Fatima:12 Mariam:10 Nour:8 Layla:8 Sara:7 Huda:6 Rania:6 Salma:6 Lina:5 Dina:4 Reem:4",
}
_ADULT_MALE_BRITISH = ("Paul:20 Mark:20 David:22 Andrew:18 Lee:14 Darren:12 Stephen:14 Gary:10 Wayne:9 "
                       "Craig:9 Jason:10 Richard:12 Neil:8 Simon:9 Martin:8 Carl:7 Dean:6 Shaun:6 "
                       "Anthony:8 Kevin:8 Ian:8 Steven:8 John:12 Peter:6 Scott:6")
_ADULT_FEMALE_BRITISH = ("Sarah:20 Lisa:18 Karen:14 Claire:16 Michelle:16 Joanne:14 Nicola:14 Emma:12 "
                         "Kelly:12 Donna:10 Tracey:9 Samantha:10 Julie:10 Helen:10 Louise:9 Rachel:9 "
                         "Amanda:8 Dawn:6 Leanne:7 Zoe:6 Gemma:8 Stacey:6 Victoria:7 Jennifer:6")

_SURNAME = {
    "british": "Smith:60 Jones:40 Taylor:32 Brown:30 Williams:30 Wilson:22 Johnson:22 Davies:18 "
               "Robinson:16 Wright:18 Thompson:18 Evans:16 Walker:18 White:16 Roberts:14 Green:14 "
               "Hall:16 Wood:14 Jackson:14 Clarke:14 Harris:12 Lewis:12 Moore:12 Turner:12 Hill:12 "
               "Cooper:12 Ward:12 Morris:10 Baker:10 King:10 Lee:10 Allen:10 Mason:8 Marshall:8 Webb:8 "
               "Chapman:7 Hughes:9 Shaw:8 Bailey:8 Bell:8 Parker:8 Mills:7 Simpson:7 Harrison:7 "
               "Pearson:6 Kirk:4 Orton:3 Bloxham:2 Gamble:3 Hextall:1 Toon:2 Bramley:3 Foulds:2 "
               "Pratt:3 Sheppard:4 Dakin:2 Freer:2 Adcock:3 Ashby:3 Gilbert:4 Moss:4 Spencer:5",
    "irish": "Murphy:14 Kelly:12 O'Brien:10 Walsh:9 Ryan:9 O'Connor:8 Byrne:7 McCarthy:7 Doyle:7 "
             "O'Neill:6 Gallagher:5 Kennedy:5 Lynch:5 Quinn:4 Brennan:4",
    "east_european": "Nowak:12 Kowalski:10 Wisniewski:8 Wojcik:8 Kaminski:6 Lewandowski:7 Zielinski:5 "
                     "Szymanski:5 Popescu:6 Ionescu:5 Kazlauskas:4 Petrov:4 Horvath:4 Dabrowski:4",
    "gujarati": "Patel:120 Mistry:28 Parmar:26 Chauhan:16 Solanki:14 Lad:10 Shah:16 Joshi:10 Modi:8 "
                "Pandya:6 Vaghela:7 Makwana:7 Chavda:6 Rathod:6 Gohil:5 Desai:6 Mehta:6 Thakrar:5 "
                "Tailor:6 Lakhani:5 Bhatt:5 Popat:5 Kotecha:5 Ruparelia:4 Dattani:3 Valand:3",
    "sikh": "Singh:60 Kaur:40 Sandhu:10 Gill:10 Dhillon:8 Sidhu:7 Bains:7 Johal:6 Atwal:5 Sahota:5 "
            "Bhogal:5 Rai:5 Virdee:4 Kalsi:4 Hayer:4 Dhaliwal:5 Grewal:4",
    "muslim_sa": "Khan:60 Hussain:34 Ahmed:30 Ali:30 Patel:26 Mahmood:14 Akhtar:12 Iqbal:12 Shah:12 "
                 "Mohammed:10 Rashid:8 Malik:10 Butt:8 Qureshi:8 Chaudhry:7 Bibi:6 Begum:6 Javed:5 "
                 "Aziz:5 Sheikh:6 Mirza:4 Raja:4 Anwar:5 Bhatti:4 Mulla:4 Loonat:2",
    "bangladeshi": "Begum:40 Miah:30 Ahmed:26 Uddin:24 Rahman:22 Ali:20 Islam:18 Hussain:14 Khatun:14 "
                   "Hoque:8 Chowdhury:10 Alom:6 Khan:8 Bibi:6 Sultana:6",
    "caribbean": "Campbell:12 Brown:14 Williams:12 Thomas:10 Johnson:10 Clarke:9 Edwards:8 Grant:8 "
                 "Francis:7 Reid:7 Henry:6 Lewis:7 Powell:6 Morgan:5 Bennett:5",
    "somali": "Mohamed:40 Ali:30 Hassan:20 Abdi:20 Ahmed:16 Farah:14 Osman:10 Omar:10 Warsame:8 "
              "Hussein:10 Jama:8 Egal:5 Aden:8 Ibrahim:9 Nur:7 Yusuf:8 Abdullahi:6",
    "west_african": "Okafor:8 Adeyemi:8 Mensah:8 Osei:7 Boateng:6 Okonkwo:6 Adebayo:7 Owusu:6 Eze:5 "
                    "Nwosu:5 Asante:5 Ogunleye:4 Bello:4 Danso:4",
    "chinese": "Wang:12 Li:12 Zhang:10 Chen:12 Liu:8 Yang:6 Huang:6 Zhao:5 Wu:6 Zhou:5 Lin:5 Wong:8 "
               "Chan:8 Cheung:5",
    "arab": "Ahmed:10 Hassan:8 Ali:8 Ibrahim:7 Saleh:6 Abdullah:6 Al-Sayed:5 Al-Hashimi:4 Mansour:5 "
            "Haddad:5 Khalil:5 Nasser:4 El-Masri:3 Youssef:5",
}

# Spelling and transliteration groups: any member can be recorded for any other.
VARIANT_GROUPS: list[tuple[str, ...]] = [
    ("Mohammed", "Muhammad", "Mohammad", "Mohamed", "Mohd", "Md", "Muhammed"),
    ("Ahmed", "Ahmad", "Ahmet"), ("Hussain", "Hussein", "Husain", "Hossain"), ("Yusuf", "Yousef", "Yusef"),
    ("Mustafa", "Mustapha"), ("Abdirahman", "Abdurahman", "Abdulrahman"), ("Ismail", "Ismael", "Esmail"),
    ("Omar", "Umar"), ("Usman", "Osman", "Uthman"), ("Zakariya", "Zakaria", "Zachariah"),
    ("Ayesha", "Aisha", "Aysha", "Aishah"), ("Fatima", "Fatimah", "Fatema"), ("Maryam", "Mariam", "Miriam"),
    ("Khadija", "Khadijah", "Kadija"), ("Zainab", "Zaynab"), ("Ibrahim", "Ebrahim"),
    ("Gurpreet", "Gurprit"), ("Harpreet", "Harprit"), ("Jaspreet", "Jasprit"), ("Manpreet", "Manprit"),
    ("Sukhvinder", "Sukhwinder"), ("Kulwinder", "Kulvinder"), ("Rajvinder", "Rajwinder"),
    ("Sandeep", "Sundeep"), ("Hardeep", "Hardip"), ("Gurdeep", "Gurdip"), ("Navdeep", "Navdip"),
    ("Priya", "Preeya"), ("Pooja", "Puja"), ("Nilesh", "Neelesh"), ("Rahul", "Raahul"),
    ("Abdi", "Abdy"), ("Fadumo", "Faduma", "Fadumu"), ("Hodan", "Hoodan"),
    ("Catherine", "Katherine", "Kathryn"), ("Rebecca", "Rebekah"), ("Stephen", "Steven"),
    ("Jayden", "Jaden", "Jaiden"), ("Kayleigh", "Kayley", "Kaley"), ("Chloe", "Cloe"),
    ("Jakub", "Jacob", "Jakob"), ("Zoe", "Zoey"), ("Leah", "Lea"), ("Callum", "Calum"),
    ("Connor", "Conor"), ("Reece", "Rhys", "Reese"), ("Isla", "Ayla"), ("Aaliyah", "Aliyah"),
]
NICKNAMES: dict[str, tuple[str, ...]] = {
    "Thomas": ("Tom", "Tommy"), "Joshua": ("Josh",), "James": ("Jim", "Jamie"), "Daniel": ("Dan", "Danny"),
    "Samuel": ("Sam", "Sammy"), "William": ("Will", "Billy"), "Matthew": ("Matt",), "Michael": ("Mike", "Mick"),
    "Christopher": ("Chris",), "Jonathan": ("Jon",), "Robert": ("Rob", "Bob"), "Joseph": ("Joe",),
    "Benjamin": ("Ben",), "Alexander": ("Alex",), "Nathan": ("Nate",), "Anthony": ("Tony",),
    "Richard": ("Rich", "Dick"), "Andrew": ("Andy",), "Charlotte": ("Charlie", "Lottie"), "Rebecca": ("Becky",),
    "Jessica": ("Jess",), "Samantha": ("Sam",), "Abigail": ("Abbie",), "Elizabeth": ("Liz", "Beth"),
    "Bethany": ("Beth",), "Eleanor": ("Ellie",), "Natalie": ("Nat",), "Jennifer": ("Jenny",),
    "Victoria": ("Vicky",), "Amelia": ("Millie",), "Nathaniel": ("Nate",), "Emmanuel": ("Manny",),
    "Oluwaseun": ("Seun",), "Abdirahman": ("Abdi",), "Abdullahi": ("Abdi",), "Ibrahim": ("Ibby",),
    "Zakariya": ("Zak",), "Hamza": ("Hamz",), "Kishan": ("Kish",), "Gurpreet": ("Gary",),
    "Sukhvinder": ("Sukhi",), "Jaspreet": ("Jas",), "Manpreet": ("Manny",), "Harpreet": ("Harry",),
    "Tomasz": ("Tomek",), "Mateusz": ("Matt",), "Kacper": ("Kasper",),
}
SIKH_SUFFIX = {"M": "Singh", "F": "Kaur"}
MOHAMMED_FORMS = VARIANT_GROUPS[0]


def _parse(spec: str) -> tuple[np.ndarray, np.ndarray]:
    names, weights = zip(*(item.rsplit(":", 1) for item in spec.split()), strict=True)
    w = np.array([float(x) for x in weights])
    return np.array(names, dtype=object), w / w.sum()


@cache
def forenames(culture: str, sex: str, adult: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(names, probabilities) for a culture and sex; British adults get their own generation's names."""
    if adult and culture in ("british", "irish"):
        return _parse(_ADULT_MALE_BRITISH if sex == "M" else _ADULT_FEMALE_BRITISH)
    return _parse((_MALE if sex == "M" else _FEMALE)[culture])


@cache
def surnames(culture: str) -> tuple[np.ndarray, np.ndarray]:
    return _parse(_SURNAME[culture])


@cache
def variant_lookup() -> dict[str, tuple[str, ...]]:
    """Name -> other spellings (transliterations first, then nicknames)."""
    out: dict[str, list[str]] = {}
    for group in VARIANT_GROUPS:
        for name in group:
            out.setdefault(name, []).extend(n for n in group if n != name)
    for name, nicks in NICKNAMES.items():
        out.setdefault(name, []).extend(nicks)
    return {k: tuple(v) for k, v in out.items()}


ALL_CULTURES = tuple(_SURNAME)
