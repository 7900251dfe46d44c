"""Russian (default) and English texts of the gateway, and the formatting of money and time.

Templates call ``t("key", name=value)``; a missing key is a bug caught by the tests (every key
used in a template must exist in both languages).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

LANGS = ("ru", "en")

MESSAGES: dict[str, tuple[str, str]] = {
    # layout
    "site_name": ("Вече — инициативное бюджетирование", "Veche — initiative budgeting"),
    "skip": ("Перейти к содержимому", "Skip to content"),
    "nav_vote": ("Голосование", "Vote"),
    "nav_results": ("Итоги", "Results"),
    "nav_dashboard": ("Программа в цифрах", "Programme dashboard"),
    "nav_check": ("Проверить голос", "Check my vote"),
    "nav_verify": ("Как проверить подсчёт", "Verify the count"),
    "nav_transparency": ("Отклонённые попытки", "Blocked attempts"),
    "other_lang": ("English", "Русский"),
    "footer": ("Голоса записываются в распределённый реестр; любой может перепроверить подсчёт.",
               "Votes are recorded on a replicated ledger; anyone can re-check the count."),
    "logout": ("Выйти", "Log out"),
    "logged_in_phone": ("Вы вошли по номеру телефона.", "You are logged in with your phone number."),
    "logged_in_card": ("Вы вошли по карточке с кодом.", "You are logged in with a code card."),
    # steps
    "steps": ("Четыре шага: номер телефона → код из СМС → район и проекты → голос.",
              "Four steps: phone number → SMS code → district and projects → vote."),
    "step_of": ("Шаг {n} из 4", "Step {n} of 4"),
    # index
    "index_title": ("Голосование за проекты", "Vote for local projects"),
    "open_campaigns": ("Идёт голосование", "Voting now"),
    "no_open": ("Сейчас нет открытых голосований.", "No vote is open right now."),
    "track_adult": ("Для взрослых", "Adults"),
    "track_children": ("Детский трек", "Children's track"),
    "closes_at": ("Голосование до {time}", "Voting closes {time}"),
    "opens_at": ("Голосование начнётся {time}", "Voting opens {time}"),
    "choose_district": ("Выберите район:", "Choose your district:"),
    "upcoming": ("Скоро", "Coming up"),
    "closed_campaigns": ("Завершённые", "Closed"),
    "see_results": ("Итоги", "Results"),
    "login_to_vote": ("Войти, чтобы проголосовать", "Log in to vote"),
    # login
    "login_title": ("Вход", "Log in"),
    "phone_label": ("Номер мобильного телефона", "Mobile phone number"),
    "phone_hint": ("Например, +7 912 345-67-89. Пришлём бесплатное СМС с кодом.",
                   "For example +7 912 345-67-89. We will send a free SMS with a code."),
    "send_code": ("Получить код", "Send me a code"),
    "code_label": ("Код из СМС (6 цифр)", "Code from the SMS (6 digits)"),
    "code_sent": ("Мы отправили СМС с кодом. Код действует {minutes} мин.",
                  "We sent an SMS with a code. It is valid for {minutes} min."),
    "confirm": ("Подтвердить", "Confirm"),
    "other_number": ("Ввести другой номер", "Use another number"),
    "card_title": ("Нет мобильного телефона?", "No mobile phone?"),
    "card_hint": ("Введите код с карточки, выданной в школе или МФЦ.",
                  "Enter the code from a card issued by your school or public service centre."),
    "card_label": ("Код карточки", "Card code"),
    "card_submit": ("Войти по карточке", "Log in with the card"),
    "honeypot_label": ("Не заполняйте это поле", "Leave this field empty"),
    "privacy_note": ("Номер телефона не покидает этот сайт и нигде не хранится в открытом виде.",
                     "Your phone number never leaves this site and is never stored in plain text."),
    "sms_text": ("Вече: код для голосования {code}. Никому его не сообщайте.",
                 "Veche: your voting code is {code}. Do not share it."),
    # ballot
    "ballot_title": ("{district}: проекты", "{district}: projects"),
    "ballot_rule_choose1": ("Выберите один проект.", "Choose one project."),
    "ballot_rule_approval": ("Отметьте от {min} до {max} проектов.", "Tick {min} to {max} projects."),
    "cost": ("Стоимость", "Cost"),
    "category": ("Категория", "Category"),
    "more": ("Подробнее", "Details"),
    "vote_button": ("Проголосовать", "Cast my vote"),
    "no_initiatives": ("В этом районе нет проектов для голосования.", "This district has no projects on the ballot."),
    "voting_closed_note": ("Голосование в этой кампании не идёт.", "Voting is not open in this campaign."),
    "already_voted_note": ("Вы уже проголосовали в этом районе.", "You have already voted in this district."),
    "your_receipt": ("Ваша квитанция", "Your receipt"),
    "district_budget": ("Бюджет района: {amount}", "District budget: {amount}"),
    # vote outcome / receipt
    "counted_title": ("Ваш голос учтён", "Your vote is counted"),
    "counted_text": ("Бюллетень записан в блок {height}. Подписи валидаторов проверены.",
                     "Your ballot is in block {height}. The validators' signatures were checked."),
    "pending_title": ("Голос принят, ждём подтверждения", "Vote received, waiting for confirmation"),
    "pending_text": ("Сеть ещё не подтвердила бюллетень. Он сохранён и будет отправлен повторно, пока не будет записан. "
                     "Проверьте статус чуть позже.",
                     "The network has not confirmed the ballot yet. It is stored and will be re-sent until it "
                     "is recorded. Check again in a moment."),
    "check_again": ("Проверить ещё раз", "Check again"),
    "rejected_title": ("Бюллетень не принят", "Ballot not accepted"),
    "tx_hash": ("Номер бюллетеня (хеш транзакции)", "Ballot number (transaction hash)"),
    "keep_hash": ("Сохраните этот номер: по нему любой может проверить, что голос учтён.",
                  "Keep this number: anyone can use it to check that the vote was counted."),
    "receipt_title": ("Квитанция", "Receipt"),
    "receipt_file": ("Скачать квитанцию (JSON) для «veche receipt verify»",
                     "Download the receipt (JSON) for “veche receipt verify”"),
    "receipt_choices": ("Выбор в бюллетене", "Choices on the ballot"),
    "receipt_position": ("Блок {height}, позиция {index}", "Block {height}, position {index}"),
    "receipt_unknown": ("Такой бюллетень сети не известен.", "The network does not know this ballot."),
    "receipt_rejected": ("Сеть отклонила эту транзакцию: {reason}", "The network rejected this transaction: {reason}"),
    "receipt_not_vote": ("Эта транзакция — не бюллетень.", "This transaction is not a ballot."),
    "check_title": ("Проверить голос", "Check a vote"),
    "check_label": ("Номер бюллетеня (64 шестнадцатеричных символа)", "Ballot number (64 hexadecimal characters)"),
    "check_submit": ("Проверить", "Check"),
    "campaign": ("Кампания", "Campaign"),
    "district": ("Район", "District"),
    # results
    "results_title": ("Итоги: {title}", "Results: {title}"),
    "results_open": ("Голосование ещё идёт, итоги появятся после {time}.",
                     "Voting is still open; results appear after {time}."),
    "results_upcoming": ("Голосование начнётся {time}.", "Voting opens {time}."),
    "results_total": ("Всего бюллетеней: {n}", "Ballots cast: {n}"),
    "results_rule": ("Правило определения победителей: {rule}", "Winner rule: {rule}"),
    "results_hash": ("Хеш результата", "Result hash"),
    "results_computing": ("Победители ещё вычисляются.", "Winners are still being computed."),
    "winner": ("победитель", "winner"),
    "votes_col": ("Голоса", "Votes"),
    "votes_chart": ("Голоса за проекты района {district}", "Votes for the projects of {district}"),
    "initiative_col": ("Проект", "Project"),
    "closed_reason": ("Закрыто: {reason}", "Closed: {reason}"),
    # initiative
    "status": ("Статус", "Status"),
    "status_approved": ("допущен к голосованию", "on the ballot"),
    "status_rejected": ("отклонён", "rejected"),
    "status_submitted": ("на рассмотрении", "under review"),
    "progress_title": ("Ход реализации", "Implementation progress"),
    "no_progress": ("Отчётов о реализации пока нет.", "No progress reports yet."),
    "stage_contract": ("контракт", "contract"),
    "stage_works": ("работы", "works"),
    "stage_done": ("завершено", "done"),
    "stage_cancelled": ("отменено", "cancelled"),
    "spent": ("Израсходовано", "Spent"),
    "document_hash": ("Хеш документа", "Document hash"),
    "back_to_ballot": ("К проектам района", "Back to the district's projects"),
    # dashboard / transparency
    "dashboard_title": ("Программа в цифрах", "Programme dashboard"),
    "dash_initiatives": ("Подано проектов", "Projects submitted"),
    "dash_approved": ("Допущено", "On the ballot"),
    "dash_ballots": ("Бюллетеней", "Ballots"),
    "dash_registered": ("Зарегистрировано избирателей", "Voters registered"),
    "dash_winners": ("Победителей", "Winners"),
    "dash_funding": ("Финансирование победителей", "Funding for winners"),
    "dash_by_district": ("По районам", "By district"),
    "dash_by_category": ("По категориям", "By category"),
    "dash_funding_district": ("Финансирование по районам", "Funding by district"),
    "dash_funding_category": ("Финансирование по категориям", "Funding by category"),
    "dash_initiatives_category": ("Проекты по категориям", "Projects by category"),
    "dash_votes_district": ("Голоса по районам", "Votes by district"),
    "dash_no_winners": ("Победители появятся после завершения голосования.",
                        "Winners appear when voting closes."),
    "transparency_title": ("Отклонённые попытки", "Blocked attempts"),
    "transparency_intro": ("Сколько запросов шлюз отклонил и почему, по районам. Номера телефонов не записываются.",
                           "How many requests the gateway refused and why, per district. Phone numbers are "
                           "never recorded."),
    "transparency_none": ("Отклонённых попыток пока нет.", "No blocked attempts so far."),
    "reason": ("Причина", "Reason"),
    "count": ("Число", "Count"),
    "not_chosen": ("(район не выбран)", "(no district chosen)"),
    # verify page
    "verify_title": ("Как проверить подсчёт", "How to verify the count"),
    # errors
    "error_title": ("Не получилось", "Something went wrong"),
    "retry_after": ("Попробуйте снова через {seconds} с.", "Try again in {seconds} s."),
    "back_home": ("На главную", "Home"),
    "back": ("Назад", "Back"),
    "err_csrf": ("Форма устарела или открыта в другом окне. Обновите страницу и попробуйте ещё раз.",
                 "This form expired or belongs to another window. Reload the page and try again."),
    "err_form_stale": ("Форма устарела. Обновите страницу.", "This form is too old. Reload the page."),
    "err_too_fast": ("Форма отправлена слишком быстро. Подождите секунду и отправьте ещё раз.",
                     "The form was sent too quickly. Wait a second and send it again."),
    "err_honeypot": ("Запрос похож на автоматический и отклонён.", "This request looks automated and was refused."),
    "err_rate_limited": ("Слишком много запросов. Попробуйте позже.", "Too many requests. Please try later."),
    "err_overloaded": ("Сайт перегружен. Попробуйте через несколько секунд.",
                       "The site is overloaded. Please try again in a few seconds."),
    "err_storage": ("Не удалось сохранить бюллетень. Попробуйте ещё раз.", "The ballot could not be stored. Try again."),
    "err_no_session": ("Сессия истекла или cookies отключены. Откройте страницу входа заново.",
                       "Your session expired or cookies are off. Open the login page again."),
    "err_login_first": ("Сначала войдите по номеру телефона или карточке.", "Please log in with your phone or a card first."),
    "err_phone_empty": ("Введите номер телефона.", "Enter your phone number."),
    "err_phone_malformed": ("Номер не распознан. Введите российский мобильный номер, например +7 912 345-67-89.",
                            "We could not read this number. Enter a Russian mobile number such as +7 912 345-67-89."),
    "err_phone_prefix": ("Принимаются только российские мобильные номера (+7 9…).",
                         "Only Russian mobile numbers (+7 9…) are accepted."),
    "err_resend_wait": ("Код уже отправлен. Новый можно запросить через {seconds} с.",
                        "A code was just sent. You can ask for a new one in {seconds} s."),
    "err_daily_cap": ("На этот номер сегодня отправлено слишком много кодов. Попробуйте завтра.",
                      "Too many codes were sent to this number today. Try again tomorrow."),
    "err_sms_failed": ("Не удалось отправить СМС. Попробуйте позже.", "The SMS could not be sent. Please try later."),
    "err_no_code": ("Сначала запросите код.", "Ask for a code first."),
    "err_code_expired": ("Срок действия кода истёк. Запросите новый.", "The code has expired. Ask for a new one."),
    "err_code_format": ("Код — это 6 цифр из СМС.", "The code is the 6 digits from the SMS."),
    "err_code_wrong": ("Неверный код. Осталось попыток: {left}.", "Wrong code. Tries left: {left}."),
    "err_locked_out": ("Слишком много неверных кодов. Попробуйте через {minutes} мин.",
                       "Too many wrong codes. Try again in {minutes} min."),
    "err_card_format": ("Код карточки — 12 букв и цифр, например ABCD-EFGH-JKLM.",
                        "A card code is 12 letters and digits, such as ABCD-EFGH-JKLM."),
    "err_card_unknown": ("Такой карточки нет.", "There is no such card."),
    "err_card_used": ("Эта карточка уже использована для голосования.", "This card has already been used to vote."),
    "err_card_campaign": ("Эта карточка выдана для другой кампании.", "This card is for another campaign."),
    "err_unknown_campaign": ("Такой кампании нет.", "There is no such campaign."),
    "err_unknown_district": ("В этой кампании нет такого района.", "This campaign has no such district."),
    "err_unknown_initiative": ("Такого проекта нет.", "There is no such project."),
    "err_not_voting": ("Голосование в этой кампании сейчас не идёт.", "Voting is not open in this campaign now."),
    "err_other_gateway": ("В этой кампании голосуют через другой сайт.",
                          "This campaign votes through another site."),
    "err_no_choice": ("Выберите проект.", "Choose a project."),
    "err_choice_count": ("Нужно выбрать от {min} до {max} проектов.", "Choose between {min} and {max} projects."),
    "err_bad_choice": ("Проекта «{choice}» нет в бюллетене этого района.",
                       "Project “{choice}” is not on this district's ballot."),
    "err_already_voted": ("Вы уже проголосовали здесь. Повторный бюллетень не принимается.",
                          "You have already voted here. A second ballot is not accepted."),
    "err_token_issued": ("Ваш личный ключ для этой кампании уже заверен. Голосуйте с того устройства и вкладки, где "
                         "он был создан.", "Your own key for this campaign is already certified. Vote from the device "
                         "and tab where it was made."),
    "err_gateway_key_exists": ("Вы уже голосовали здесь без JavaScript: сайт хранит ваш ключ для этой кампании, "
                               "голосуйте так же.", "You have already voted here without JavaScript: the site holds "
                               "your key for this campaign, vote the same way."),
    "err_bad_token_request": ("Неверный запрос заверения ключа.", "A malformed key certification request."),
    "err_tokens_refused": ("Сеть не приняла заверение ключа (лимит кампании исчерпан или кампания закрыта).",
                           "The network refused to count the key certification (the campaign's cap is used up or "
                           "it closed)."),
    "err_no_voter_held": ("Эта кампания не принимает бюллетени с личными ключами.",
                          "This campaign takes no ballots of voters' own keys."),
    "modes_title": ("Ключи и бюллетени", "Keys and ballots"),
    "modes_intro": ("Сколько ключей выдал или заверил этот сайт и сколько бюллетеней подписано каждым видом ключей. "
                    "Ключи сайта хранятся у него зашифрованными до закрытия кампании; личные ключи создаются в "
                    "браузере избирателя, сайт заверяет их вслепую и не видит. Число ключей сверяется с отчётами "
                    "оператора СМС.",
                    "How many keys this site made or certified, and how many ballots each kind of key signed. The "
                    "site's keys are kept by it, encrypted, until the campaign closes; voters' own keys are made in "
                    "their browsers and certified blindly: the site never sees them. Auditors hold the number of keys "
                    "against the SMS provider's delivery records."),
    "modes_site_keys": ("Ключи сайта", "Site-held keys"),
    "modes_own_keys": ("Личные ключи (заверено)", "Voters' own keys (certified)"),
    "modes_site_ballots": ("Бюллетени с ключами сайта", "Ballots with site-held keys"),
    "modes_own_ballots": ("Бюллетени с личными ключами", "Ballots with voters' own keys"),
    "results_modes": ("С ключами сайта: {site}; с личными ключами избирателей: {own}",
                      "With site-held keys: {site}; with voters' own keys: {own}"),
    "vh_working": ("Создаём и заверяем ваш личный ключ…", "Making and certifying your own key…"),
    "vh_sent": ("Бюллетень отправлен, ждём подтверждения…", "Ballot sent; waiting for confirmation…"),
    "vh_counted": ("Ваш голос учтён", "Your vote is counted"),
    "vh_held": ("Ключ создан в вашем браузере, сайт его не видел. Блок", "The key was made in your browser; "
                "this site never saw it. Block"),
    "vh_receipt": ("Скачать квитанцию", "Download the receipt"),
    "vh_failed": ("Не получилось:", "Failed:"),
    "vh_pending": ("Сеть ещё не подтвердила бюллетень, проверьте позже.", "Not confirmed yet; check later."),
    "err_bad_form": ("Форма заполнена неправильно: {detail}.", "The form is malformed: {detail}."),
    "err_too_large": ("Запрос слишком большой.", "The request is too large."),
    "err_slow_client": ("Запрос передавался слишком долго.", "The request took too long to arrive."),
    "err_wrong_type": ("Неподдерживаемый тип запроса.", "Unsupported request type."),
    "err_not_found": ("Страница не найдена.", "Page not found."),
    "err_method": ("Этот адрес не принимает такой запрос.", "This address does not accept this request."),
    "err_bad_hash": ("Номер бюллетеня — 64 шестнадцатеричных символа.", "A ballot number is 64 hexadecimal characters."),
    "err_nodes_down": ("Сеть голосования сейчас недоступна. Попробуйте через минуту.",
                       "The voting network is unavailable right now. Try again in a minute."),
    "err_rejected": ("Сеть отклонила бюллетень: {reason}", "The network rejected the ballot: {reason}"),
    "err_internal": ("Внутренняя ошибка. Мы уже знаем о ней.", "Internal error. It has been logged."),
}

RULE_NAMES: dict[str, tuple[str, str]] = {
    "top-n": ("больше всего голосов", "most votes"),
    "greedy": ("по числу голосов в пределах бюджета", "by votes within the budget"),
    "greedy-no-skip": ("по числу голосов до исчерпания бюджета", "by votes until the budget runs out"),
    "equal-shares": ("метод равных долей", "method of equal shares"),
}

CATEGORY_NAMES: dict[str, tuple[str, str]] = {
    "sports": ("спорт", "sports"),
    "culture": ("культура", "culture"),
    "libraries": ("библиотеки", "libraries"),
    "housing-utilities": ("ЖКХ", "housing and utilities"),
    "street-lighting": ("уличное освещение", "street lighting"),
    "landscaping": ("благоустройство", "landscaping"),
    "water-supply": ("водоснабжение", "water supply"),
    "playgrounds": ("детские площадки", "playgrounds"),
    "local-roads": ("местные дороги", "local roads"),
}

REASON_NAMES: dict[str, tuple[str, str]] = {
    "rate_ip": ("лимит запросов с адреса", "per-address rate limit"),
    "rate_subnet": ("лимит запросов с подсети", "per-subnet rate limit"),
    "rate_phone": ("лимит СМС на номер", "per-phone SMS limit"),
    "sms_cooldown": ("повторный запрос кода слишком рано", "code re-requested too soon"),
    "sms_daily_cap": ("дневной лимит СМС на номер", "daily SMS cap per phone"),
    "code_wrong": ("неверный код", "wrong code"),
    "code_expired": ("просроченный код", "expired code"),
    "code_lockout": ("блокировка после неверных кодов", "lock-out after wrong codes"),
    "honeypot": ("заполнено скрытое поле (бот)", "hidden field filled in (bot)"),
    "too_fast": ("форма отправлена слишком быстро", "form sent too quickly"),
    "csrf": ("поддельная или устаревшая форма", "forged or stale form"),
    "form_stale": ("устаревшая форма", "stale form"),
    "second_ballot": ("повторный бюллетень", "second ballot"),
    "second_token": ("повторное заверение ключа", "second key certification"),
    "card_used": ("повторное использование карточки", "card reused"),
    "card_unknown": ("неизвестная карточка", "unknown card"),
    "overload_inflight": ("перегрузка", "overload"),
    "overload_queue": ("перегрузка очереди", "submission queue full"),
}


REJECTION_NAMES: dict[str, tuple[str, str]] = {
    "registration_cap": ("исчерпан лимит регистраций избирателей этого сайта в кампании",
                         "this site's voter registration cap for the campaign is used up"),
    "outside_window": ("голосование в этой кампании не идёт", "voting is not open in this campaign"),
    "campaign_closed": ("кампания закрыта", "the campaign is closed"),
    "double_vote": ("с этого ключа уже есть бюллетень", "this key has already cast a ballot"),
    "token_used": ("с этого личного ключа уже есть бюллетень", "this own key has already cast a ballot"),
    "bad_token": ("заверение ключа недействительно", "the key's certification is not valid"),
    "token_wrong_campaign": ("ключ заверен для другой кампании", "the key is certified for another campaign"),
    "tokens_exhausted": ("сеть ещё не учла заверение ключа", "the network has not counted the key's certification"),
    "invalid_choice": ("выбранного проекта нет в бюллетене", "a chosen project is not on the ballot"),
    "bad_ballot": ("неверное число выбранных проектов", "the number of chosen projects is wrong"),
    "unknown_district": ("такого района нет в кампании", "the campaign has no such district"),
    "unknown_campaign": ("такой кампании нет", "there is no such campaign"),
    "permission_denied": ("у сайта нет права регистрировать избирателей этой кампании",
                          "this site may not register voters for the campaign"),
}


def rejection_text(lang: str, code: str, message: str) -> str:
    """A node's rejection in the citizen's language when we know the code, else its own message."""
    pair = REJECTION_NAMES.get(code)
    if pair is not None:
        return pair[1] if lang == "en" else pair[0]
    return message or code


def translate(lang: str, key: str, **params: object) -> str:
    pair = MESSAGES.get(key)
    if pair is None:
        raise KeyError(f"no text for {key!r}")
    text = pair[1] if lang == "en" else pair[0]
    return text.format(**params) if params else text


def named(table: dict[str, tuple[str, str]], lang: str, key: str) -> str:
    pair = table.get(key)
    if pair is None:
        return key
    return pair[1] if lang == "en" else pair[0]


def format_money(kopecks: int, lang: str) -> str:
    """1234567800 → "12 345 678 ₽" (kopecks shown only when not zero)."""
    rubles, rest = divmod(int(kopecks), 100)
    grouped = f"{rubles:,}".replace(",", "\u00a0" if lang == "ru" else ",")
    if rest:
        grouped += ("," if lang == "ru" else ".") + f"{rest:02d}"
    return grouped + "\u00a0₽"


def format_time(ms: int, offset_minutes: int, lang: str) -> str:
    zone = timezone(timedelta(minutes=offset_minutes))
    moment = datetime.fromtimestamp(ms / 1000, tz=zone)
    hours, minutes = divmod(abs(offset_minutes), 60)
    sign = "+" if offset_minutes >= 0 else "-"
    label = "МСК" if offset_minutes == 180 and lang == "ru" else f"UTC{sign}{hours}" + (f":{minutes:02d}" if minutes else "")
    if lang == "en":
        return moment.strftime("%d %b %Y, %H:%M ") + label
    return moment.strftime("%d.%m.%Y %H:%M ") + label
