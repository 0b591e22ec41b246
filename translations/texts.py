"""The Russian and Romanian texts of the customer pages, keyed by the English source text.

Regenerate the catalogues after changing texts (from the project folder):

    .venv/bin/pybabel extract -F babel.cfg -o translations/messages.pot --no-location --omit-header .
    .venv/bin/python translations/texts.py        # writes ru/ro .po and compiles the .mo files

A test fails while a text in the templates or views has no translation here.
"""

from __future__ import annotations

RU = {
    "Purchase": "Покупка",
    "Points used": "Списание баллов",
    "Bonus": "Бонус",
    "Expired": "Сгорели",
    "Adjustment": "Корректировка",
    "Refund": "Возврат",
    "Your choices are saved.": "Ваш выбор сохранён.",
    "Your account is deleted.": "Ваш аккаунт удалён.",
    "Send me offers and news by SMS.": "Присылать мне предложения и новости по SMS.",
    "Send me offers and news by e-mail.": "Присылать мне предложения и новости по e-mail.",
    "Send me notifications in this browser.": "Присылать мне уведомления в этом браузере.",
    "Show offers on my card in Apple Wallet or Google Wallet.":
        "Показывать предложения на моей карте в Apple Wallet или Google Wallet.",
    "Please enter your name.": "Пожалуйста, укажите имя.",
    "Please use at most 120 characters.": "Не больше 120 символов.",
    "Please enter your mobile number.": "Пожалуйста, укажите номер мобильного телефона.",
    "This is not a valid phone number. Use the international format, e.g. +373 69 123 456.":
        "Это не похоже на номер телефона. Укажите его в международном формате, например +373 69 123 456.",
    "This is not a valid e-mail address.": "Это не похоже на адрес e-mail.",
    "Please enter a real date of birth.": "Пожалуйста, укажите настоящую дату рождения.",
    "This referral code is not valid.": "Такого кода приглашения нет.",
    "Your %(programme)s code: %(code)s": "Ваш код %(programme)s: %(code)s",
    "This code is not right, or it has expired.": "Код неверный или уже истёк.",
    "Language": "Язык",
    "Your %(programme)s card": "Ваша карта %(programme)s",
    "Your card": "Ваша карта",
    "stamps": "штампов",
    "points": "баллов",
    "This card is no longer active.": "Эта карта больше не действует.",
    "Add to your phone": "Добавить в телефон",
    "Add to": "Добавить в",
    "Your tier": "Ваш уровень",
    "Spend %(amount)s %(currency)s more to reach %(tier)s.":
        "Ещё %(amount)s %(currency)s покупок до уровня %(tier)s.",
    "Progress to %(tier)s": "Прогресс до уровня %(tier)s",
    "You are in our top tier. Thank you!": "У вас наш высший уровень. Спасибо!",
    "Points expiring soon": "Скоро сгорят",
    "%(points)s points on %(date)s": "%(points)s — %(date)s",
    "Recent activity": "Последние операции",
    "Nothing yet. Show your card at the till to earn points.":
        "Пока ничего. Покажите карту на кассе, чтобы получать баллы.",
    "Notifications": "Уведомления",
    "Notify me in this browser": "Уведомлять меня в этом браузере",
    "Messages I agree to receive": "Какие сообщения я согласен получать",
    "Save my choices": "Сохранить",
    "Your data": "Ваши данные",
    "Download my data (JSON)": "Скачать мои данные (JSON)",
    "Delete my account": "Удалить мой аккаунт",
    "Your name, phone and e-mail are erased and your card stops working. This cannot be undone.":
        "Ваше имя, телефон и e-mail будут стёрты, а карта перестанет работать. Это нельзя отменить.",
    "Yes, delete my account": "Да, удалить мой аккаунт",
    "Join %(programme)s": "Вступить в %(programme)s",
    "Get your %(programme)s card": "Получите карту %(programme)s",
    "Collect points on every purchase. Your card lives in Apple Wallet or Google Wallet.":
        "Копите баллы с каждой покупки. Карта хранится в Apple Wallet или Google Wallet.",
    "Please check the highlighted fields.": "Пожалуйста, проверьте отмеченные поля.",
    "Your name": "Ваше имя",
    "Mobile number": "Мобильный телефон",
    "E-mail": "E-mail",
    "optional": "необязательно",
    "Birthday": "День рождения",
    "optional, for a birthday bonus": "необязательно, для бонуса ко дню рождения",
    "Referral code": "Код приглашения",
    "How may we contact you?": "Как с вами можно связаться?",
    "You can change this at any time on your card page.": "Это можно изменить в любой момент на странице карты.",
    "Get my card": "Получить карту",
    "Scan to get your loyalty card": "Отсканируйте, чтобы получить карту лояльности",
    "Points on every purchase, right in your phone's wallet.": "Баллы за каждую покупку — прямо в кошельке телефона.",
    "QR code to join %(programme)s": "QR-код для вступления в %(programme)s",
    "Print this poster": "Распечатать плакат",
    "Confirm your number": "Подтвердите номер",
    "You already have a card": "У вас уже есть карта",
    "We sent a six-digit code by SMS to your number. Enter it to open your card.":
        "Мы отправили шестизначный код по SMS на ваш номер. Введите его, чтобы открыть карту.",
    "Code": "Код",
    "Open my card": "Открыть карту",
    "Notifications are on in this browser.": "Уведомления в этом браузере включены.",
    "Could not turn on notifications.": "Не удалось включить уведомления.",
    # The landing page at / (app/web/home.py)
    "Loyalty cards": "Карты лояльности",
    "This server keeps the loyalty cards of the shops that use Tallypass: in Apple Wallet, in Google Wallet and on the web.":
        "Этот сервер хранит карты лояльности магазинов, которые работают с Tallypass: в Apple Wallet, в Google Wallet и в вебе.",
    "Have a card?": "Уже есть карта?",
    "Open the card in your phone's wallet, or the link to your card you got when you joined.":
        "Откройте карту в кошельке телефона или по ссылке на карту, которую вы получили при вступлении.",
    "Want one?": "Хотите карту?",
    "Scan the QR code on the poster at the shop's counter, or ask at the till.":
        "Отсканируйте QR-код на плакате у кассы магазина или спросите у кассира.",
    "Shop staff": "Сотрудникам магазина",
    "Sign in to the dashboard": "Войти в панель управления",
}

RO = {
    "Purchase": "Cumpărătură",
    "Points used": "Puncte folosite",
    "Bonus": "Bonus",
    "Expired": "Expirate",
    "Adjustment": "Ajustare",
    "Refund": "Returnare",
    "Your choices are saved.": "Alegerile tale au fost salvate.",
    "Your account is deleted.": "Contul tău a fost șters.",
    "Send me offers and news by SMS.": "Trimiteți-mi oferte și noutăți prin SMS.",
    "Send me offers and news by e-mail.": "Trimiteți-mi oferte și noutăți prin e-mail.",
    "Send me notifications in this browser.": "Trimiteți-mi notificări în acest browser.",
    "Show offers on my card in Apple Wallet or Google Wallet.":
        "Afișați oferte pe cardul meu din Apple Wallet sau Google Wallet.",
    "Please enter your name.": "Te rugăm să îți introduci numele.",
    "Please use at most 120 characters.": "Folosește cel mult 120 de caractere.",
    "Please enter your mobile number.": "Te rugăm să îți introduci numărul de mobil.",
    "This is not a valid phone number. Use the international format, e.g. +373 69 123 456.":
        "Acesta nu este un număr de telefon valid. Folosește formatul internațional, de ex. +373 69 123 456.",
    "This is not a valid e-mail address.": "Aceasta nu este o adresă de e-mail validă.",
    "Please enter a real date of birth.": "Te rugăm să introduci o dată de naștere reală.",
    "This referral code is not valid.": "Acest cod de recomandare nu este valid.",
    "Your %(programme)s code: %(code)s": "Codul tău %(programme)s: %(code)s",
    "This code is not right, or it has expired.": "Codul nu este corect sau a expirat.",
    "Language": "Limba",
    "Your %(programme)s card": "Cardul tău %(programme)s",
    "Your card": "Cardul tău",
    "stamps": "ștampile",
    "points": "puncte",
    "This card is no longer active.": "Acest card nu mai este activ.",
    "Add to your phone": "Adaugă în telefon",
    "Add to": "Adaugă în",
    "Your tier": "Nivelul tău",
    "Spend %(amount)s %(currency)s more to reach %(tier)s.":
        "Mai cheltuie %(amount)s %(currency)s pentru a ajunge la nivelul %(tier)s.",
    "Progress to %(tier)s": "Progres spre nivelul %(tier)s",
    "You are in our top tier. Thank you!": "Ești la cel mai înalt nivel. Îți mulțumim!",
    "Points expiring soon": "Puncte care expiră în curând",
    "%(points)s points on %(date)s": "%(points)s puncte la %(date)s",
    "Recent activity": "Activitate recentă",
    "Nothing yet. Show your card at the till to earn points.":
        "Nimic încă. Arată cardul la casă ca să aduni puncte.",
    "Notifications": "Notificări",
    "Notify me in this browser": "Anunță-mă în acest browser",
    "Messages I agree to receive": "Mesajele pe care accept să le primesc",
    "Save my choices": "Salvează alegerile",
    "Your data": "Datele tale",
    "Download my data (JSON)": "Descarcă datele mele (JSON)",
    "Delete my account": "Șterge-mi contul",
    "Your name, phone and e-mail are erased and your card stops working. This cannot be undone.":
        "Numele, telefonul și e-mailul tău vor fi șterse, iar cardul nu va mai funcționa. Acțiunea este ireversibilă.",
    "Yes, delete my account": "Da, șterge-mi contul",
    "Join %(programme)s": "Alătură-te %(programme)s",
    "Get your %(programme)s card": "Obține cardul %(programme)s",
    "Collect points on every purchase. Your card lives in Apple Wallet or Google Wallet.":
        "Adună puncte la fiecare cumpărătură. Cardul tău stă în Apple Wallet sau Google Wallet.",
    "Please check the highlighted fields.": "Te rugăm să verifici câmpurile marcate.",
    "Your name": "Numele tău",
    "Mobile number": "Număr de mobil",
    "E-mail": "E-mail",
    "optional": "opțional",
    "Birthday": "Ziua de naștere",
    "optional, for a birthday bonus": "opțional, pentru un bonus de ziua ta",
    "Referral code": "Cod de recomandare",
    "How may we contact you?": "Cum te putem contacta?",
    "You can change this at any time on your card page.": "Poți schimba asta oricând pe pagina cardului.",
    "Get my card": "Obține cardul",
    "Scan to get your loyalty card": "Scanează pentru a obține cardul de fidelitate",
    "Points on every purchase, right in your phone's wallet.":
        "Puncte la fiecare cumpărătură, direct în portofelul telefonului.",
    "QR code to join %(programme)s": "Cod QR pentru a te alătura %(programme)s",
    "Print this poster": "Tipărește acest afiș",
    "Confirm your number": "Confirmă numărul",
    "You already have a card": "Ai deja un card",
    "We sent a six-digit code by SMS to your number. Enter it to open your card.":
        "Ți-am trimis prin SMS un cod din șase cifre. Introdu-l pentru a deschide cardul.",
    "Code": "Cod",
    "Open my card": "Deschide cardul",
    "Notifications are on in this browser.": "Notificările sunt pornite în acest browser.",
    "Could not turn on notifications.": "Nu am putut porni notificările.",
    # The landing page at / (app/web/home.py)
    "Loyalty cards": "Carduri de fidelitate",
    "This server keeps the loyalty cards of the shops that use Tallypass: in Apple Wallet, in Google Wallet and on the web.":
        "Acest server păstrează cardurile de fidelitate ale magazinelor care folosesc Tallypass: în Apple Wallet, în Google Wallet și pe web.",
    "Have a card?": "Ai deja un card?",
    "Open the card in your phone's wallet, or the link to your card you got when you joined.":
        "Deschide cardul din portofelul telefonului sau linkul către card primit la înscriere.",
    "Want one?": "Vrei unul?",
    "Scan the QR code on the poster at the shop's counter, or ask at the till.":
        "Scanează codul QR de pe afișul de la casa magazinului sau întreabă la casă.",
    "Shop staff": "Personalul magazinului",
    "Sign in to the dashboard": "Intră în panoul de administrare",
}

LANGUAGES = {"ru": RU, "ro": RO}


def main() -> None:
    from pathlib import Path

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po, write_po

    here = Path(__file__).resolve().parent
    for language, texts in LANGUAGES.items():
        with open(here / "messages.pot", "rb") as handle:
            catalog = read_po(handle, locale=language)
        missing = [m.id for m in catalog if m.id and m.id not in texts]
        if missing:
            raise SystemExit(f"{language}: no translation for {missing}")
        for message in catalog:
            if message.id:
                message.string = texts[message.id]
        folder = here / language / "LC_MESSAGES"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "messages.po", "wb") as handle:
            write_po(handle, catalog, omit_header=True, no_location=True)
        with open(folder / "messages.mo", "wb") as handle:
            write_mo(handle, catalog)
        print(f"{language}: {len(texts)} texts")


if __name__ == "__main__":
    main()
