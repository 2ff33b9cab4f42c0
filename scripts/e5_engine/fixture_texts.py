"""The strings of the e5 fidelity fixture (tests/fixtures/e5_engine.json): written for it, varied
on purpose (accents, apostrophes, emoji, URLs, handles, hashtags, capitals, dialect, typos, other
languages and scripts, whitespace and invisible characters, a post longer than one 512-piece window)."""

_FORUM_PARAGRAPHS = [
    "Buongiorno a tutti, scrivo qui perché dopo tre settimane non so più a chi rivolgermi.",
    "Il 3 marzo ho chiesto il passaggio alla fibra FTTH (offerta \"Casa Super 2.5 Giga\", 24,90 €/mese) "
    "e il tecnico doveva venire il 10; non si è presentato nessuno, né il 10 né il 17.",
    "Al numero verde mi hanno detto che la pratica è \"in lavorazione\" e di attendere 48/72 ore, "
    "ma intanto la vecchia ADSL è stata disattivata e sono senza linea: lavoro da casa e ogni giorno "
    "perso mi costa.",
    "Ho aperto due reclami (n. 4471-AB e 4490-CD), mandato una PEC e scritto in chat: risposte "
    "automatiche, sempre le stesse, e nessuno che sappia dirmi una data.",
    "Ho provato anche a riavviare il modem, cambiare cavo, fare il reset: la spia DSL lampeggia e "
    "basta. Il router nuovo è ancora nella scatola perché la fibra non c'è!",
    "Qualcuno ha avuto lo stesso problema nella zona di Bologna Navile? Come l'avete risolto? "
    "Conviene passare a un altro operatore o aspettare? Sto valutando seriamente la disdetta, "
    "anche se mi hanno detto che pagherei i costi di recesso (circa 40 euro) e le rate del modem.",
    "Aggiungo che in fattura di aprile mi hanno addebitato sia l'ADSL sia la fibra: doppio canone "
    "per un servizio che non ho. Ho chiesto il rimborso ma niente.",
    "Grazie a chi vorrà rispondere, e scusate la lunghezza del messaggio.",
]
LONG_FORUM_POST = " ".join(_FORUM_PARAGRAPHS * 3)[:2000]

FIXTURE_TEXTS: list[str] = [
    "Buongiorno, vorrei sapere se l'offerta è ancora attiva.",
    "È già la terza volta che la linea cade: perché nessuno risponde?",
    "Perché non c'è più il caffè in grani al supermercato?? Ve lo chiedo per l'ennesima volta",
    "L'app non si apre più dopo l'aggiornamento, l'ho reinstallata due volte",
    "Complimenti, terzo giorno senza linea 👏👏👏",
    "Bellissima pubblicità ❤️❤️ mi ha fatto piangere 😭",
    "😂😂😂",
    "🤣🤣 @marco_rossi guarda chi c'è",
    "@Vodafone_IT quando tornerà il segnale a Bari? #disservizio #vodafone",
    "#Barilla #pasta #italia 🇮🇹🍝",
    "Guardate qui: https://www.esempio.it/offerte?id=123&utm_source=fb e ditemi se è vero",
    "Scrivete a assistenza@esempio.it oppure chiamate il 800 123 456",
    "BASTA!!! VOGLIO PARLARE CON UN OPERATORE UMANO SUBITO",
    "NON FUNZIONA NIENTE DA IERI SERA, VERGOGNA",
    "Ma che ce stai a dì, 'sta pubblicità è 'na ciofeca",
    "Uè guagliò, chist'è 'o meglio cafè d'o munno",
    "Ghe sem, la pubblicità la me pias minga",
    "Mi sà che o sbagliato ordine, cm posso cambiarlo? grz",
    "nn mi arriva il pacco da 2 setimane ke skifo",
    "xke nn rispondete???",
    "I can't log into my account since yesterday, please help",
    "Great ad, loved the music! Who is the singer?",
    "Добрый день, у меня не работает интернет уже два дня.",
    "Спасибо за рекламу, очень красиво!",
    "我的订单还没有到，请帮忙查一下。",
    "この広告はとても素敵です",
    "광고 음악 제목이 뭐예요?",
    "مرحبا، متى يفتح المتجر؟",
    "Γεια σας, θέλω να ακυρώσω τη συνδρομή μου.",
    "Ça marche pas, j'ai besoin d'aide s'il vous plaît",
    "¿Dónde puedo comprar este café en España?",
    "Grüße aus München, tolle Werbung!",
    "Perché l’apostrofo tipografico è diverso dall'apostrofo dritto?",
    "«Virgolette basse» e “virgolette alte” e ‘singole’",
    "Prezzo: 19,99€ — sconto del 20% fino al 31/12/2026",
    "Ho pagato 49.90 EUR + IVA, ma la fattura n° 2026/0042 dice 59,90€",
    "L’iPhone 15 Pro Max è disponibile in negozio?",
    "  spazi   multipli    e\ttabulazioni\te\nritorni\na capo  ",
    "riga uno\r\nriga due\r\n",
    "testo\u200bcon\u200bspazi\u200binvisibili e\u00a0spazio\u00a0non\u00a0separabile",
    "\u200b\u200c\u200d\ufeff",
    "caffe\u0300 con accento combinante e perche\u0301",
    "ＦＵＬＬＷＩＤＴＨ ｔｅｓｔｏ １２３",
    "ﬁne ﬂusso: le legature si scompongono",
    "Ⅻ secolo, ① ② ③, ½ litro, x² + y²",
    "👨‍👩‍👧‍👦 famiglia al completo 👍🏽👍🏿",
    "🏳️‍🌈 🇮🇹 🇪🇺 #️⃣ 1️⃣",
    "Emoji rari: 🫠 🫶 🪿 🦭",
    "ok",
    "!",
    "",
    "a",
    "E",
    "Lavoro: cerco impiego come magazziniere, dove mando il curriculum?",
    "Siamo una testata giornalistica, vorremmo un'intervista con il vostro ufficio stampa.",
    "Vorrei disdire il contratto e passare a un altro operatore, come faccio?",
    "Mi avete addebitato due volte la stessa ricarica, rivoglio i miei soldi",
    "Suggerisco di aggiungere la modalità scura all'app, sarebbe utile di sera",
    "Grazie mille a Giulia del negozio di via Roma, gentilissima!",
    "Sono Mario Rossi, cliente dal 2009, codice cliente 12345678",
    "Il mio IBAN è IT60X0542811101000000123456, perché non avete fatto l'addebito?",
    "Ah ah ah ah ah ah ah ah ah ah ah ah ah ah ah ah ah ah ah ah",
    "Seeeeeeempre peggiooooooooo!!!!!!!!!!!!",
    # A literal "<unk>" is left out: the engine (like SentencePiece) never matches its unknown piece
    # in text, while a Hugging Face tokenizer, the hub's too, reads it as the unknown token.
    "<s> </s> <pad> <mask> tag speciali nel testo",
    "<b>grassetto</b> &amp; entità HTML &lt;3",
    "print('ciao'); SELECT * FROM clienti; -- prova",
    LONG_FORUM_POST,
]
