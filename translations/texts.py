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
    # The card page at the till, its invitation and rewards, the wallet badges, the privacy link (issue 18 §4).
    "Refund: points taken back": "Возврат: баллы списаны",
    "Refund: points given back": "Возврат: баллы возвращены",
    "Reward": "Награда",
    "Add to Google Wallet": "Добавить в Google Кошелек",
    "Your card's code": "Код вашей карты",
    "%(programme)s card": "Карта %(programme)s",
    "Show this at the till": "Покажите на кассе",
    "Card number": "Номер карты",
    "Your next reward": "Ваша следующая награда",
    "%(have)s of %(need)s stamps": "Штампов: %(have)s из %(need)s",
    "You have earned %(reward)s! Ask for it at the till.": "Награда ваша: %(reward)s! Попросите её на кассе.",
    "your reward": "ваш подарок",
    "Stamps to go until %(reward)s: %(num)s.": "Осталось штампов до награды (%(reward)s): %(num)s.",
    "Points to go until %(reward)s: %(num)s.": "Осталось баллов до награды (%(reward)s): %(num)s.",
    "Points towards %(reward)s": "Баллы до награды (%(reward)s)",
    "How to earn": "Как копить",
    "1 stamp for every purchase of %(amount)s %(currency)s or more.":
        "1 штамп за каждую покупку от %(amount)s %(currency)s.",
    "1 stamp for every purchase.": "1 штамп за каждую покупку.",
    "%(num)s stamps: %(reward)s.": "Штампов для награды: %(num)s — %(reward)s.",
    "from %(amount)s %(currency)s spent": "от %(amount)s %(currency)s покупок",
    "1 point for every %(amount)s %(currency)s spent.": "1 балл за каждые %(amount)s %(currency)s покупок.",
    "no points on purchases.": "без баллов за покупки.",
    "your tier": "ваш уровень",
    "%(num)s points become %(reward)s.": "Баллы обмениваются на награду: %(num)s — %(reward)s.",
    "a reward": "награда",
    "%(num)s points on your birthday.": "Бонус в день рождения: %(num)s.",
    "%(num)s points for every friend who joins with your code.":
        "За каждого друга, присоединившегося по вашему коду, — бонус %(num)s.",
    "%(num)s points: %(event)s.": "%(event)s: бонус %(num)s.",
    "Invite a friend": "Пригласите друга",
    "Your friend gets %(num)s points when they join with your code.":
        "Друг получит бонус %(num)s, если присоединится по вашему коду.",
    "Your referral code": "Ваш код приглашения",
    "Join %(programme)s with my code %(code)s:": "Присоединяйся к %(programme)s с моим кодом %(code)s:",
    "Link copied. Paste it in a message to your friend.": "Ссылка скопирована. Вставьте её в сообщение другу.",
    "Copy this link and send it to your friend:": "Скопируйте эту ссылку и отправьте другу:",
    "Share my invitation": "Поделиться приглашением",
    "Notifications are blocked for this page. Allow them in your browser settings, then try again.":
        "Уведомления для этой страницы запрещены. Разрешите их в настройках браузера и попробуйте ещё раз.",
    ("On iPhone and iPad, notifications come only to cards opened from the Home Screen: tap Share, then “Add to "
     "Home Screen”, and open your card from there."):
        "На iPhone и iPad уведомления приходят только на карту, открытую с экрана «Домой»: нажмите «Поделиться», "
        "затем «На экран „Домой“» и откройте карту оттуда.",
    "Privacy policy of %(programme)s": "Политика конфиденциальности %(programme)s",
    "How we use your data:": "Как мы используем ваши данные:",
    "Nothing here yet. Show your card at the till to collect stamps.":
        "Пока пусто. Покажите карту на кассе, чтобы собирать штампы.",
    # The till (/till/)
    "No card with this number or phone in this programme.":
        "Нет карты с таким номером или телефоном в этой программе.",
    "No purchase with this receipt at this store.":
        "В этом магазине нет покупки с таким чеком.",
    "This amount is over the most this programme accepts for one purchase.":
        "Сумма больше максимальной суммы одной покупки в этой программе.",
    "The amount must be positive.":
        "Сумма должна быть положительной.",
    "At most %(points)s points can pay for this purchase.":
        "Максимум баллов для этой покупки: %(points)s.",
    "The card does not have that many points.":
        "На карте нет столько баллов.",
    "Enter a whole number of points.":
        "Введите целое число баллов.",
    "A stamp card has no points to pay with.":
        "На карте со штампами нет баллов для оплаты.",
    "The card cannot hold that many points.":
        "На карте не может быть столько баллов.",
    "This refund is more than what is left of the purchase.":
        "Возврат больше, чем осталось от покупки.",
    "This receipt was already recorded differently.":
        "Этот чек уже записан с другими данными.",
    "This refund was already recorded differently.":
        "Этот возврат уже записан с другими данными.",
    "This attempt was already used for something else; start again.":
        "Эта попытка уже использована для другой операции; начните заново.",
    "Still recording the previous tap; wait a moment.":
        "Предыдущее нажатие ещё записывается; подождите немного.",
    "You do not serve at this store.":
        "Вы не работаете в этом магазине.",
    "This page has expired; reload it.":
        "Страница устарела; обновите её.",
    "You are signed out; sign in again.":
        "Вы вышли из системы; войдите снова.",
    "Your account cannot use the till.":
        "Ваша учётная запись не может работать с кассой.",
    "Check the highlighted field.":
        "Проверьте выделенное поле.",
    "The till sent something unexpected; reload the page.":
        "Касса отправила неожиданные данные; обновите страницу.",
    "Too many requests; wait a moment.":
        "Слишком много запросов; подождите немного.",
    "Enter an amount, e.g. 12.50 (at most two decimals).":
        "Введите сумму, например 12.50 (не больше двух знаков после точки).",
    "Enter a whole number of points, 0 or more.":
        "Введите целое число баллов, 0 или больше.",
    "Enter the card number.":
        "Введите номер карты.",
    "Enter a valid phone number.":
        "Введите правильный номер телефона.",
    "Enter the receipt number.":
        "Введите номер чека.",
    "Choose one of your stores.":
        "Выберите один из своих магазинов.",
    "Tallypass till":
        "Касса Tallypass",
    "Till":
        "Касса",
    "No network — nothing was recorded.":
        "Нет сети — ничего не записано.",
    "Try again":
        "Повторить",
    "Point the camera at the card's QR code.":
        "Наведите камеру на QR-код карты.",
    "No camera here: type the card number or the phone.":
        "Камеры нет: введите номер карты или телефон.",
    "The camera is not allowed: type the card number or the phone.":
        "Доступ к камере запрещён: введите номер карты или телефон.",
    "Something went wrong; nothing was recorded. Try again.":
        "Что-то пошло не так; ничего не записано. Попробуйте ещё раз.",
    "Points: %(points)s":
        "Баллы: %(points)s",
    "Most points for this amount: %(points)s (−%(discount)s).":
        "Максимум баллов для этой суммы: %(points)s (−%(discount)s).",
    "Points may pay up to %(cap)s of a purchase.":
        "Баллами можно оплатить до %(cap)s покупки.",
    "Stamps: %(stamps)s of %(required)s":
        "Штампы: %(stamps)s из %(required)s",
    "No tier":
        "Без уровня",
    "Recorded":
        "Записано",
    "Refunded":
        "Возвращено",
    "Reward to give: %(name)s":
        "Выдайте награду: %(name)s",
    "The till needs the network to look cards up and record purchases; it never keeps a purchase to send later. "
    "Check the Wi-Fi or mobile data, then reload.":
        "Кассе нужна сеть, чтобы находить карты и записывать покупки; она никогда не сохраняет покупку, чтобы "
        "отправить её позже. Проверьте Wi-Fi или мобильные данные и обновите страницу.",
    "Reload":
        "Обновить",
    "Choose your store":
        "Выберите магазин",
    "No store is open for you yet. An administrator can add you to a store.":
        "Для вас пока не открыт ни один магазин. Администратор может добавить вас в магазин.",
    "Sale":
        "Продажа",
    "Who is the customer?":
        "Кто покупатель?",
    "Scan the card":
        "Сканировать карту",
    "Stop the camera":
        "Выключить камеру",
    "Card number or phone":
        "Номер карты или телефон",
    "Find":
        "Найти",
    "Amount":
        "Сумма",
    "Points to pay with":
        "Оплатить баллами",
    "Most":
        "Максимум",
    "Review":
        "Проверить",
    "Another customer":
        "Другой покупатель",
    "Check and confirm":
        "Проверьте и подтвердите",
    "Customer":
        "Покупатель",
    "Paid with points":
        "Оплачено баллами",
    "Discount":
        "Скидка",
    "Amount due":
        "К оплате",
    "Earns":
        "Начислится",
    "Balance after":
        "Баланс после",
    "Stamps after":
        "Штампов после",
    "Confirm":
        "Подтвердить",
    "Change":
        "Изменить",
    "Earned":
        "Начислено",
    "Receipt":
        "Чек",
    "Next customer":
        "Следующий покупатель",
    "Refund by receipt":
        "Возврат по чеку",
    "Amount to refund":
        "Сумма возврата",
    "Points taken back":
        "Списано баллов",
    "Points given back":
        "Возвращено баллов",
    "Another refund":
        "Ещё один возврат",
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
    # The card page at the till, its invitation and rewards, the wallet badges, the privacy link (issue 18 §4).
    "Refund: points taken back": "Rambursare: puncte retrase",
    "Refund: points given back": "Rambursare: puncte returnate",
    "Reward": "Recompensă",
    "Add to Google Wallet": "Adaugă în Google Wallet",
    "Your card's code": "Codul cardului tău",
    "%(programme)s card": "Cardul %(programme)s",
    "Show this at the till": "Arată-l la casă",
    "Card number": "Numărul cardului",
    "Your next reward": "Următoarea ta recompensă",
    "%(have)s of %(need)s stamps": "%(have)s din %(need)s ștampile",
    "You have earned %(reward)s! Ask for it at the till.": "Ai câștigat: %(reward)s! Cere recompensa la casă.",
    "your reward": "recompensa ta",
    "Stamps to go until %(reward)s: %(num)s.": "Ștampile rămase până la %(reward)s: %(num)s.",
    "Points to go until %(reward)s: %(num)s.": "Puncte rămase până la %(reward)s: %(num)s.",
    "Points towards %(reward)s": "Puncte pentru %(reward)s",
    "How to earn": "Cum acumulezi",
    "1 stamp for every purchase of %(amount)s %(currency)s or more.":
        "O ștampilă pentru fiecare cumpărătură de cel puțin %(amount)s %(currency)s.",
    "1 stamp for every purchase.": "O ștampilă pentru fiecare cumpărătură.",
    "%(num)s stamps: %(reward)s.": "%(num)s ștampile: %(reward)s.",
    "from %(amount)s %(currency)s spent": "de la %(amount)s %(currency)s cheltuiți",
    "1 point for every %(amount)s %(currency)s spent.": "1 punct pentru fiecare %(amount)s %(currency)s cheltuiți.",
    "no points on purchases.": "fără puncte pentru cumpărături.",
    "your tier": "nivelul tău",
    "%(num)s points become %(reward)s.": "%(num)s puncte devin %(reward)s.",
    "a reward": "o recompensă",
    "%(num)s points on your birthday.": "%(num)s puncte de ziua ta.",
    "%(num)s points for every friend who joins with your code.":
        "%(num)s puncte pentru fiecare prieten care se înscrie cu codul tău.",
    "%(num)s points: %(event)s.": "%(num)s puncte: %(event)s.",
    "Invite a friend": "Invită un prieten",
    "Your friend gets %(num)s points when they join with your code.":
        "Prietenul tău primește %(num)s puncte când se înscrie cu codul tău.",
    "Your referral code": "Codul tău de recomandare",
    "Join %(programme)s with my code %(code)s:": "Înscrie-te la %(programme)s cu codul meu %(code)s:",
    "Link copied. Paste it in a message to your friend.": "Link copiat. Lipește-l într-un mesaj către prietenul tău.",
    "Copy this link and send it to your friend:": "Copiază acest link și trimite-l prietenului tău:",
    "Share my invitation": "Trimite invitația",
    "Notifications are blocked for this page. Allow them in your browser settings, then try again.":
        "Notificările sunt blocate pentru această pagină. Permite-le în setările browserului, apoi încearcă din "
        "nou.",
    ("On iPhone and iPad, notifications come only to cards opened from the Home Screen: tap Share, then “Add to "
     "Home Screen”, and open your card from there."):
        "Pe iPhone și iPad, notificările ajung doar la cardurile deschise de pe ecranul principal: apasă "
        "Partajează, apoi „Adaugă pe ecranul principal” și deschide cardul de acolo.",
    "Privacy policy of %(programme)s": "Politica de confidențialitate %(programme)s",
    "How we use your data:": "Cum folosim datele tale:",
    "Nothing here yet. Show your card at the till to collect stamps.":
        "Încă nimic. Arată cardul la casă ca să aduni ștampile.",
    # The till (/till/)
    "No card with this number or phone in this programme.":
        "Nu există niciun card cu acest număr sau telefon în acest program.",
    "No purchase with this receipt at this store.":
        "Nu există nicio cumpărătură cu acest bon în acest magazin.",
    "This amount is over the most this programme accepts for one purchase.":
        "Suma depășește maximul pe care acest program îl acceptă pentru o cumpărătură.",
    "The amount must be positive.":
        "Suma trebuie să fie pozitivă.",
    "At most %(points)s points can pay for this purchase.":
        "Maximum de puncte pentru această cumpărătură: %(points)s.",
    "The card does not have that many points.":
        "Cardul nu are atâtea puncte.",
    "Enter a whole number of points.":
        "Introduceți un număr întreg de puncte.",
    "A stamp card has no points to pay with.":
        "Un card cu ștampile nu are puncte de plată.",
    "The card cannot hold that many points.":
        "Cardul nu poate avea atâtea puncte.",
    "This refund is more than what is left of the purchase.":
        "Rambursarea depășește ce a rămas din cumpărătură.",
    "This receipt was already recorded differently.":
        "Acest bon a fost deja înregistrat altfel.",
    "This refund was already recorded differently.":
        "Această rambursare a fost deja înregistrată altfel.",
    "This attempt was already used for something else; start again.":
        "Această încercare a fost deja folosită pentru altceva; începeți din nou.",
    "Still recording the previous tap; wait a moment.":
        "Atingerea anterioară încă se înregistrează; așteptați puțin.",
    "You do not serve at this store.":
        "Nu lucrați în acest magazin.",
    "This page has expired; reload it.":
        "Pagina a expirat; reîncărcați-o.",
    "You are signed out; sign in again.":
        "Ați fost deconectat; autentificați-vă din nou.",
    "Your account cannot use the till.":
        "Contul dvs. nu poate folosi casa.",
    "Check the highlighted field.":
        "Verificați câmpul evidențiat.",
    "The till sent something unexpected; reload the page.":
        "Casa a trimis ceva neașteptat; reîncărcați pagina.",
    "Too many requests; wait a moment.":
        "Prea multe cereri; așteptați puțin.",
    "Enter an amount, e.g. 12.50 (at most two decimals).":
        "Introduceți o sumă, de ex. 12.50 (cel mult două zecimale).",
    "Enter a whole number of points, 0 or more.":
        "Introduceți un număr întreg de puncte, 0 sau mai mult.",
    "Enter the card number.":
        "Introduceți numărul cardului.",
    "Enter a valid phone number.":
        "Introduceți un număr de telefon valid.",
    "Enter the receipt number.":
        "Introduceți numărul bonului.",
    "Choose one of your stores.":
        "Alegeți unul dintre magazinele dvs.",
    "Tallypass till":
        "Casa Tallypass",
    "Till":
        "Casa",
    "No network — nothing was recorded.":
        "Nu există rețea — nu s-a înregistrat nimic.",
    "Try again":
        "Încercați din nou",
    "Point the camera at the card's QR code.":
        "Îndreptați camera spre codul QR al cardului.",
    "No camera here: type the card number or the phone.":
        "Nu există cameră: introduceți numărul cardului sau telefonul.",
    "The camera is not allowed: type the card number or the phone.":
        "Camera nu este permisă: introduceți numărul cardului sau telefonul.",
    "Something went wrong; nothing was recorded. Try again.":
        "Ceva nu a mers; nu s-a înregistrat nimic. Încercați din nou.",
    "Points: %(points)s":
        "Puncte: %(points)s",
    "Most points for this amount: %(points)s (−%(discount)s).":
        "Maximum de puncte pentru această sumă: %(points)s (−%(discount)s).",
    "Points may pay up to %(cap)s of a purchase.":
        "Punctele pot plăti până la %(cap)s dintr-o cumpărătură.",
    "Stamps: %(stamps)s of %(required)s":
        "Ștampile: %(stamps)s din %(required)s",
    "No tier":
        "Fără nivel",
    "Recorded":
        "Înregistrat",
    "Refunded":
        "Rambursat",
    "Reward to give: %(name)s":
        "Recompensă de oferit: %(name)s",
    "The till needs the network to look cards up and record purchases; it never keeps a purchase to send later. "
    "Check the Wi-Fi or mobile data, then reload.":
        "Casa are nevoie de rețea pentru a găsi carduri și a înregistra cumpărături; nu păstrează niciodată o "
        "cumpărătură pentru a o trimite mai târziu. Verificați Wi-Fi sau datele mobile, apoi reîncărcați.",
    "Reload":
        "Reîncărcați",
    "Choose your store":
        "Alegeți magazinul",
    "No store is open for you yet. An administrator can add you to a store.":
        "Încă nu aveți niciun magazin. Un administrator vă poate adăuga la un magazin.",
    "Sale":
        "Vânzare",
    "Who is the customer?":
        "Cine este clientul?",
    "Scan the card":
        "Scanați cardul",
    "Stop the camera":
        "Opriți camera",
    "Card number or phone":
        "Numărul cardului sau telefonul",
    "Find":
        "Căutați",
    "Amount":
        "Suma",
    "Points to pay with":
        "Plătiți cu puncte",
    "Most":
        "Maximum",
    "Review":
        "Verificați",
    "Another customer":
        "Alt client",
    "Check and confirm":
        "Verificați și confirmați",
    "Customer":
        "Client",
    "Paid with points":
        "Plătit cu puncte",
    "Discount":
        "Reducere",
    "Amount due":
        "De plată",
    "Earns":
        "Se acumulează",
    "Balance after":
        "Sold după",
    "Stamps after":
        "Ștampile după",
    "Confirm":
        "Confirmați",
    "Change":
        "Modificați",
    "Earned":
        "Acumulat",
    "Receipt":
        "Bon",
    "Next customer":
        "Următorul client",
    "Refund by receipt":
        "Rambursare după bon",
    "Amount to refund":
        "Suma de rambursat",
    "Points taken back":
        "Puncte retrase",
    "Points given back":
        "Puncte returnate",
    "Another refund":
        "Altă rambursare",
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
