"""Every error message a client may read, in Persian: the catalogue, and `to_persian`.

A message's id is its English text as the code raises it, a template whose `{…}` parts are
the expressions of the f-string that builds it (`"The kind {kind.value} takes no
department."`). `to_persian(message)` finds the template the message was built from and
fills the Persian one with the same parts, each part translated too when it is itself a
message (an identifier's reason inside "'{field}' is invalid: {reason}."); a message with no
translation gets its code's Persian sentence, then the English. The error codes and every
extension stay as they are: only `message` changes.

gateway/edge/errors.py applies it to every GraphQL error and refusal, and Open311's error
bodies (gateway/edge/open311/errors.py) to their descriptions.

tests/gateway/test_errors_fa.py reads every message the code raises (each error class,
refusal, Open311 error and agency summary, by their source) and fails naming those missing
here, with the line to add, so a new message needs its line below; it also checks each
Persian template keeps its English one's parts. GENERAL holds the libraries' messages that
a client meets (graphql-core's parse, validation and coercion errors, strawberry's and
starlette's refusals).
"""

from __future__ import annotations

import functools
import re

# Messages the gateway raises (gateway/, connectors/, identifiers/), by their English text.
PERSIAN: dict[str, str] = {
    # --- the edge: requests that are not GraphQL requests, refusals --------------------------
    "Internal error.": "خطای داخلی.",
    "Not found.": "یافت نشد.",
    "Authentication failed.": "احراز هویت ناموفق بود.",
    "Authentication is unavailable; try again.": "احراز هویت در دسترس نیست؛ دوباره بکوشید.",
    "Too many failed authentication attempts; retry later.": (
        "تلاش‌های ناموفق احراز هویت بیش از حد بوده است؛ بعداً دوباره بکوشید."
    ),
    "Too many requests; try again in {retry_after} s.": (
        "درخواست‌ها بیش از حد است؛ {retry_after} ثانیهٔ دیگر دوباره بکوشید."
    ),
    "This address holds {most} WebSocket connections, the most it may at once.": (
        "این نشانی هم‌اکنون {most} اتصال وب‌سوکت باز دارد که بیشترین مجاز است."
    ),
    "The request body exceeds {max_bytes} bytes.": "بدنهٔ درخواست از {max_bytes} بایت بیشتر است.",
    "Metrics are for operators.": "سنجه‌ها فقط برای گردانندگان است.",
    "Send the request as JSON, with Content-Type application/json.": (
        "درخواست را به صورت JSON و با Content-Type application/json بفرستید."
    ),
    "The batch holds no operation.": "دسته هیچ عملیاتی ندارد.",
    "The batch has {len(data)} operations; the limit is {cap}.": (
        "دسته {len(data)} عملیات دارد؛ سقف آن {cap} است."
    ),
    "An operation must be a JSON object.": "هر عملیات باید یک شیء JSON باشد.",
    "`query` must be a string.": "`query` باید رشته باشد.",
    "`operationName` must be a string.": "`operationName` باید رشته باشد.",
    "`variables` must be an object.": "`variables` باید شیء باشد.",
    "`extensions` must be an object.": "`extensions` باید شیء باشد.",
    "`{name}` must be given once.": "`{name}` باید تنها یک بار داده شود.",
    "{what} is not valid JSON: {exc}": "{what} JSON معتبر نیست: {exc}",
    "{what} nests JSON deeper than {MAX_JSON_DEPTH} levels.": (
        "{what} بیش از {MAX_JSON_DEPTH} سطح JSON تودرتو دارد."
    ),
    "The request body": "بدنهٔ درخواست",
    "'{field}' is invalid: {reason}.": "'{field}' نامعتبر است: {reason}.",
    "A value is invalid: {reason}.": "مقداری نامعتبر است: {reason}.",
    # --- guards: limits, cost, documents -----------------------------------------------------
    "The document is longer than {max_length} characters.": (
        "سند از {max_length} نویسه بلندتر است."
    ),
    "The operation's estimated cost is {cost}; the budget is {budget}. Ask for smaller pages "
    "or fewer nested lists.": (
        "هزینهٔ برآوردشدهٔ عملیات {cost} است و بودجه {budget}. صفحه‌های کوچک‌تر یا فهرست‌های "
        "تودرتوی کمتری بخواهید."
    ),
    "totalCount with hasOutstandingDues would read {many} parcels, more than "
    "{DUES_COUNT_MAX_CANDIDATES}; narrow the filter or page without it.": (
        "totalCount با hasOutstandingDues باید {many} ملک را بخواند، بیش از "
        "{DUES_COUNT_MAX_CANDIDATES}؛ صافی را محدودتر کنید یا بدون آن صفحه‌به‌صفحه بخوانید."
    ),
    "{name} may be at most {cap}; page through the rest with a cursor.": (
        "{name} حداکثر {cap} می‌تواند باشد؛ بقیه را با مکان‌نما صفحه به صفحه بخوانید."
    ),
    "{name} must be at least 1.": "{name} دست‌کم باید ۱ باشد.",
    "Give first or last, not both.": "first یا last را بدهید، نه هر دو را.",
    "The operation ran past its time budget of {self.policy.budget_s} s and was stopped; "
    "ask for less at once.": (
        "عملیات از بودجهٔ زمانی {self.policy.budget_s} ثانیه‌ای‌اش گذشت و متوقف شد؛ "
        "یک‌باره کمتر بخواهید."
    ),
    "Operation '{name}' is {depth} levels deep; the limit is {max_depth}.": (
        "عملیات '{name}' {depth} سطح عمق دارد؛ سقف آن {max_depth} است."
    ),
    "Operation '{name}' nests ofType more than {MAX_OF_TYPE_DEPTH} deep, deeper than the "
    "standard introspection query (or any type here) needs.": (
        "عملیات '{name}' ofType را بیش از {MAX_OF_TYPE_DEPTH} سطح تودرتو کرده است، بیش از "
        "آنچه پرس‌وجوی استاندارد درون‌نگری (یا هر نوعی در اینجا) لازم دارد."
    ),
    "Operation '{name}' asks for more than {max_fields} fields once its fragments are "
    "spread; ask for fewer, or spread each fragment once.": (
        "عملیات '{name}' پس از گسترش قطعه‌هایش بیش از {max_fields} فیلد می‌خواهد؛ کمتر "
        "بخواهید یا هر قطعه را یک بار گسترش دهید."
    ),
    "Operation '{name}' asks for one field {repeated} times in one selection (fragments "
    "merged in); the limit is {MAX_REPEATED_FIELDS}.": (
        "عملیات '{name}' یک فیلد را {repeated} بار در یک گزینش می‌خواهد (با قطعه‌های "
        "ادغام‌شده)؛ سقف آن {MAX_REPEATED_FIELDS} است."
    ),
    "Operation '{name}' asks for {len(keys)} root fields; the limit is {max_root_fields}.": (
        "عملیات '{name}' {len(keys)} فیلد ریشه می‌خواهد؛ سقف آن {max_root_fields} است."
    ),
    "The document uses {self.aliases} aliases; the limit is {max_aliases}.": (
        "سند {self.aliases} نام مستعار به کار برده است؛ سقف آن {max_aliases} است."
    ),
    "The document is not GraphQL: {exc.message}": "سند GraphQL نیست: {exc.message}",
    "The document does not match the schema: {errors[0].message}": (
        "سند با طرح‌واره نمی‌خواند: {errors[0].message}"
    ),
    # Apollo's clients match this message itself to send the query's text: it stays as it is.
    "PersistedQueryNotFound": "PersistedQueryNotFound",
    "This operation is not registered; only registered operations are accepted from "
    "partners.": "این عملیات ثبت نشده است؛ از همکاران تنها عملیات ثبت‌شده پذیرفته می‌شود.",
    "The sha256Hash is not the query's.": "sha256Hash از آنِ این پرس‌وجو نیست.",
    "extensions.persistedQuery needs version 1 and a sha256Hash of 64 hex digits.": (
        "extensions.persistedQuery به نسخهٔ 1 و یک sha256Hash شصت‌وچهار رقمی هگزادسیمال نیاز دارد."
    ),
    # --- access: scopes, keys ----------------------------------------------------------------
    "This field needs the {self.scope} scope.": "این فیلد دسترسی {self.scope} را لازم دارد.",
    "Reading a {type_name} needs the {scope} scope.": (
        "خواندن {type_name} دسترسی {scope} را لازم دارد."
    ),
    "The kind must be notary, bank, counter, operator, router or department:<name>.": (
        "نوع باید notary، bank، counter، operator، router یا department:<name> باشد."
    ),
    "The kind {kind.value} takes no department.": "نوع {kind.value} اداره نمی‌پذیرد.",
    # --- federation (gateway/schema/federation.py) --------------------------------------------
    "At most {most} representations in one request.": (
        "در یک درخواست حداکثر {most} نمایندهٔ موجودیت پذیرفته می‌شود."
    ),
    "Each representation needs the __typename of an entity: Parcel or Person.": (
        "هر نمایندهٔ موجودیت باید __typename یکی از موجودیت‌ها را داشته باشد: Parcel یا Person."
    ),
    "The kind {kind.value} takes no organisation.": "نوع {kind.value} سازمان نمی‌پذیرد.",
    "The department must be one of: {', '.join(DEPARTMENTS)}.": (
        "اداره باید یکی از این‌ها باشد: {', '.join(DEPARTMENTS)}."
    ),
    "A bank needs its three-digit bank code.": "بانک به کد سه‌رقمی بانک خود نیاز دارد.",
    "A bank's organisation is its three-digit bank code.": (
        "سازمانِ یک بانک کد سه‌رقمی آن بانک است."
    ),
    "A {kind.value} named {name} exists in another department ({record.department}).": (
        "یک {kind.value} با نام {name} در ادارهٔ دیگری ({record.department}) وجود دارد."
    ),
    "A {kind.value} named {name} has another organisation ({record.organisation}).": (
        "یک {kind.value} با نام {name} سازمان دیگری ({record.organisation}) دارد."
    ),
    "The name must have 1 to {MAX_NAME_LENGTH} characters.": (
        "نام باید ۱ تا {MAX_NAME_LENGTH} نویسه داشته باشد."
    ),
    "The public needs no key.": "عموم مردم کلید لازم ندارند.",
    "A key must expire in the future, or never.": ("کلید باید در آینده منقضی شود، یا هرگز."),
    "No API key has that prefix or id.": "هیچ کلید API با این پیشوند یا شناسه نیست.",
    "A key's prefix is the {PREFIX_BYTES * 2} hex digits after {KEY_MARK}_.": (
        "پیشوند کلید، {PREFIX_BYTES * 2} رقم هگزادسیمال پس از {KEY_MARK}_ است."
    ),
    "This key is revoked already.": "این کلید پیش‌تر باطل شده است.",
    # --- schema: ids, cursors, parcels, pages ------------------------------------------------
    "Not a cursor this list gave out.": "این مکان‌نما را این فهرست نداده است.",
    "Not a valid global id.": "شناسهٔ سراسری معتبر نیست.",
    "The id names no known type.": "این شناسه نوع شناخته‌شده‌ای را نام نمی‌برد.",
    "Give exactly one of id, renewalCode or registryPlate.": (
        "دقیقاً یکی از id، renewalCode یا registryPlate را بدهید."
    ),
    "The id is not a parcel's.": "این شناسه از آنِ یک قطعه (ملک) نیست.",
    "first must be between 1 and {appointments.MAX_SLOTS}.": (
        "first باید میان ۱ و {appointments.MAX_SLOTS} باشد."
    ),
    "{field} must be between {low} and {high}.": "{field} باید میان {low} و {high} باشد.",
    "expected a string": "رشته انتظار می‌رفت",
    "expected a decimal number": "عدد اعشاری انتظار می‌رفت",
    # --- inquiries (استعلام) -----------------------------------------------------------------
    "inquiryStats needs a partner's, a department's or an operator's credentials.": (
        "inquiryStats اعتبارنامهٔ یک همکار، یک اداره یا یک گرداننده را لازم دارد."
    ),
    "Not an InquiryCheck id.": "شناسهٔ یک InquiryCheck نیست.",
    "The queue is a department's.": "صف از آنِ یک اداره است.",
    "Revoking an answer is an operator's act.": "ابطال پاسخ کارِ گرداننده است.",
    "Unknown inquiry kind.": "نوع استعلام ناشناخته است.",
    "A {principal.kind.value} may not ask a {submission.kind} inquiry.": (
        "یک {principal.kind.value} نمی‌تواند استعلام {submission.kind} بخواهد."
    ),
    "Name the property by exactly one of renewalCode and registryPlate.": (
        "ملک را دقیقاً با یکی از renewalCode و registryPlate نام ببرید."
    ),
    "An idempotency key is 1 to {MAX_IDEMPOTENCY_KEY} printable characters.": (
        "کلید یکتایی (idempotency key) ۱ تا {MAX_IDEMPOTENCY_KEY} نویسهٔ چاپ‌پذیر است."
    ),
    "The counterparty is another person than the applicant.": (
        "طرف معامله باید کسی جز متقاضی باشد."
    ),
    "This idempotency key was used for another inquiry with a different input.": (
        "این کلید یکتایی پیش‌تر برای استعلام دیگری با ورودی متفاوت به کار رفته است."
    ),
    "No parcel has this code.": "هیچ قطعه‌ای (ملکی) این کد را ندارد.",
    "No check with this id waits for your department.": (
        "هیچ بررسی‌ای با این شناسه در انتظار ادارهٔ شما نیست."
    ),
    "An officer answers PASS or FAIL.": "کارشناس با PASS یا FAIL پاسخ می‌دهد.",
    "A note of 1 to 2,000 characters says why.": ("یادداشتی ۱ تا ۲٬۰۰۰ نویسه‌ای دلیل را می‌گوید."),
    "This check has been answered already.": "به این بررسی پیش‌تر پاسخ داده شده است.",
    "This check is not in your department's queue yet.": ("این بررسی هنوز در صف ادارهٔ شما نیست."),
    "A reason of 1 to 500 characters is recorded.": "دلیلی ۱ تا ۵۰۰ نویسه‌ای ثبت می‌شود.",
    "No inquiry has this tracking code.": "هیچ استعلامی این کد رهگیری را ندارد.",
    "The inquiry has no answer yet.": "استعلام هنوز پاسخی ندارد.",
    "The answer is revoked already.": "پاسخ پیش‌تر باطل شده است.",
    "The inquiry is not decided yet: its answer and letter come with the verdict.": (
        "استعلام هنوز نتیجه نگرفته است: پاسخ و نامهٔ آن با نتیجه می‌آیند."
    ),
    "until must be later than since.": "until باید دیرتر از since باشد.",
    "The range spans at most {MAX_RANGE.days} days: narrow since or until.": (
        "بازه حداکثر {MAX_RANGE.days} روز است: since یا until را تنگ‌تر کنید."
    ),
    "Name each grouping once.": "هر گروه‌بندی را یک بار نام ببرید.",
    # --- webhooks ----------------------------------------------------------------------------
    "An organisation is a bank's three-digit code or <notary|bank|counter>:<principal id>, "
    "as `gateway keys create` prints it.": (
        "سازمان، کد سه‌رقمی یک بانک یا <notary|bank|counter>:<principal id> است، چنان‌که "
        "`gateway keys create` چاپ می‌کند."
    ),
    "A webhook's URL must be {' or '.join(allowed)}, with a host.": (
        "نشانی وب‌هوک باید {' or '.join(allowed)} و دارای میزبان باشد."
    ),
    "A webhook's URL may not carry credentials.": "نشانی وب‌هوک نباید اعتبارنامه داشته باشد.",
    "A webhook's URL has at most {_URL_CHARS} characters.": (
        "نشانی وب‌هوک حداکثر {_URL_CHARS} نویسه دارد."
    ),
    "No {match['kind']} has the principal id {match['id']}.": (
        "هیچ {match['kind']} با شناسهٔ {match['id']} نیست."
    ),
    "This organisation has no webhook.": "این سازمان وب‌هوکی ندارد.",
    # --- citizen requests (درخواست شهروندی), appointments, the catalogue ---------------------
    "Generate 1 to {MAX_DAYS} days of slots at a time.": (
        "هر بار ۱ تا {MAX_DAYS} روز نوبت بسازید."
    ),
    "No citizen request has this tracking code.": "هیچ درخواست شهروندی این کد رهگیری را ندارد.",
    "This request was merged into another: book with that one's code.": (
        "این درخواست در درخواست دیگری ادغام شده است: با کد آن نوبت بگیرید."
    ),
    "The request is {request.status}: appointments are for open requests.": (
        "وضعیت درخواست {request.status} است: نوبت برای درخواست‌های باز است."
    ),
    "No appointment slot has this id.": "هیچ نوبتی این شناسه را ندارد.",
    "The slot is for another service than the request's.": (
        "این نوبت برای خدمتی جز خدمت درخواست است."
    ),
    "The slot has already begun.": "زمان این نوبت آغاز شده است.",
    "The slot is already booked: choose another.": (
        "این نوبت پیش‌تر رزرو شده است: دیگری را برگزینید."
    ),
    "The request already holds an appointment.": "درخواست پیش‌تر نوبتی دارد.",
    "The request already holds an appointment: reschedule it instead.": (
        "درخواست پیش‌تر نوبتی دارد: به جای آن، زمانش را تغییر دهید."
    ),
    "The request holds no appointment.": "درخواست نوبتی ندارد.",
    "The appointment has already begun.": "زمان نوبت آغاز شده است.",
    "The request holds no appointment: book one.": "درخواست نوبتی ندارد: یکی رزرو کنید.",
    "The request already holds this slot.": "درخواست پیش‌تر همین نوبت را دارد.",
    "{field} is 1 to {limit} characters.": "{field} ۱ تا {limit} نویسه است.",
    "A department is one of: {', '.join(DEPARTMENTS)}.": (
        "اداره یکی از این‌هاست: {', '.join(DEPARTMENTS)}."
    ),
    "At most {MAX_QUESTIONS} questions.": "حداکثر {MAX_QUESTIONS} پرسش.",
    "A service code is a lower-case name (a-z, 0-9, _).": (
        "کد خدمت نامی با حروف کوچک است (a-z، 0-9، _)."
    ),
    "No group of the catalogue has this code.": "هیچ گروهی از فهرست خدمات این کد را ندارد.",
    "channel is one of {', '.join(SERVICE_CHANNELS)}.": (
        "channel یکی از این‌هاست: {', '.join(SERVICE_CHANNELS)}."
    ),
    "A deadline is 1 to 365 working days.": "مهلت ۱ تا ۳۶۵ روز کاری است.",
    "An outside agency is one of {', '.join(OUTSIDE_AGENCIES)}.": (
        "سازمان بیرونی یکی از این‌هاست: {', '.join(OUTSIDE_AGENCIES)}."
    ),
    "A region is one of {', '.join(map(str, sorted(known_regions)))}.": (
        "منطقه یکی از این‌هاست: {', '.join(map(str, sorted(known_regions)))}."
    ),
    "A question's code is a unique lower-case name (a-z, 0-9, _).": (
        "کد پرسش نامی یکتا با حروف کوچک است (a-z، 0-9، _)."
    ),
    "A datatype is one of: {', '.join(DATATYPES)}.": (
        "نوع داده یکی از این‌هاست: {', '.join(DATATYPES)}."
    ),
    "A list question needs its values.": "پرسش فهرستی به مقدارهایش نیاز دارد.",
    "Only operators, the 137 centre and the department a request is assigned to may change it.": (
        "تنها گردانندگان، سامانهٔ ۱۳۷ و اداره‌ای که درخواست به آن واگذار شده می‌توانند آن "
        "را تغییر دهند."
    ),
    "A {field} of 1 to {limit} characters is recorded.": (
        "برای {field} متنی ۱ تا {limit} نویسه‌ای ثبت می‌شود."
    ),
    "No citizen request with this id is yours to see.": (
        "هیچ درخواست شهروندی با این شناسه برای دیدن شما نیست."
    ),
    "The request changed meanwhile; read it again.": (
        "درخواست در این میان تغییر کرده است؛ دوباره آن را بخوانید."
    ),
    "The request is CLOSED; a reply would reach no one.": (
        "درخواست بسته (CLOSED) است؛ پاسخ به کسی نمی‌رسد."
    ),
    "A rating is 1 to 5.": "امتیاز ۱ تا ۵ است.",
    "No request has this tracking code and mobile number.": (
        "هیچ درخواستی این کد رهگیری و شمارهٔ همراه را ندارد."
    ),
    "The request is {request.status}; a rating follows its resolution.": (
        "وضعیت درخواست {request.status} است؛ امتیاز پس از رسیدگی به آن داده می‌شود."
    ),
    "The request has no responsible department to be assigned to (routing found none); "
    "refer or reject it.": (
        "درخواست ادارهٔ مسئولی برای واگذاری ندارد (مسیریابی هیچ اداره‌ای نیافت)؛ آن را "
        "ارجاع دهید یا رد کنید."
    ),
    "mobileLast4 is the mobile number's last four digits.": (
        "mobileLast4 چهار رقم پایانی شمارهٔ همراه است."
    ),
    "Too many lookups of citizen requests; try again later.": (
        "جست‌وجوهای درخواست‌های شهروندی بیش از حد بوده است؛ بعداً دوباره بکوشید."
    ),
    "This request was merged into another already.": (
        "این درخواست پیش‌تر در درخواست دیگری ادغام شده است."
    ),
    "The request is {request.status}; only open requests are merged or split.": (
        "وضعیت درخواست {request.status} است؛ تنها درخواست‌های باز ادغام یا تقسیم می‌شوند."
    ),
    "A request is not a duplicate of itself.": "درخواست تکرار خودش نیست.",
    "A split makes 2 to {MAX_PARTS} requests.": "تقسیم، ۲ تا {MAX_PARTS} درخواست می‌سازد.",
    "Not a department of the municipality.": "از اداره‌های شهرداری نیست.",
    "Each part goes to another department.": "هر بخش به اداره‌ای دیگر می‌رود.",
    "A mobile number is 11 digits starting 09 (e.g. 0912 345 6789).": (
        "شمارهٔ همراه ۱۱ رقم است و با 09 آغاز می‌شود (مانند 0912 345 6789)."
    ),
    "kind is one of {', '.join(REQUEST_KINDS)}.": (
        "kind یکی از این‌هاست: {', '.join(REQUEST_KINDS)}."
    ),
    "The description is 1 to {MAX_DESCRIPTION} characters.": (
        "شرح ۱ تا {MAX_DESCRIPTION} نویسه است."
    ),
    "The name is 2 to {MAX_NAME} characters.": "نام ۲ تا {MAX_NAME} نویسه است.",
    "Give both latitude and longitude, or neither.": (
        "هم عرض جغرافیایی و هم طول جغرافیایی را بدهید، یا هیچ‌کدام را."
    ),
    "Not a point on Earth (WGS 84 degrees).": "نقطه‌ای روی زمین نیست (درجه‌های WGS 84).",
    "An address is 1 to {MAX_ADDRESS} characters.": "نشانی ۱ تا {MAX_ADDRESS} نویسه است.",
    "Say where: coordinates (latitude and longitude) or an address.": (
        "بگویید کجا: مختصات (عرض و طول جغرافیایی) یا یک نشانی."
    ),
    "At most {MAX_PHOTOS} photos.": "حداکثر {MAX_PHOTOS} عکس.",
    "Too many or too long answers.": "پاسخ‌ها بیش از حد زیاد یا بلند است.",
    "This idempotency key was used for another request with a different input.": (
        "این کلید یکتایی پیش‌تر برای درخواست دیگری با ورودی متفاوت به کار رفته است."
    ),
    "A photo is an http(s) URL of at most {MAX_PHOTO_URL} characters.": (
        "عکس، نشانی http(s) با حداکثر {MAX_PHOTO_URL} نویسه است."
    ),
    "The service {service.code} asks no question {code}.": (
        "خدمت {service.code} پرسشی به نام {code} ندارد."
    ),
    "This point lies outside every region of the city; give an address too, and the 137 "
    "centre will locate it.": (
        "این نقطه بیرون از همهٔ منطقه‌های شهر است؛ نشانی را هم بدهید تا سامانهٔ ۱۳۷ جای آن را بیابد."
    ),
    "No service of the catalogue has this code.": "هیچ خدمتی از فهرست خدمات این کد را ندارد.",
    "The service {service.code} is not offered in region {region} yet.": (
        "خدمت {service.code} هنوز در منطقهٔ {region} ارائه نمی‌شود."
    ),
    "The service {service.code} is not offered in any region yet.": (
        "خدمت {service.code} هنوز در هیچ منطقه‌ای ارائه نمی‌شود."
    ),
    "The question {code} needs an answer.": "پرسش {code} پاسخ لازم دارد.",
    "The answer to {code} is one of: {', '.join(values)}.": (
        "پاسخ {code} یکی از این‌هاست: {', '.join(values)}."
    ),
    "Rank departments or regions.": "اداره‌ها یا منطقه‌ها را رتبه‌بندی کنید.",
    "Only operators and the 137 centre generate appointment slots.": (
        "تنها گردانندگان و سامانهٔ ۱۳۷ نوبت می‌سازند."
    ),
    "Without credentials, give the last four digits of the request's mobile number.": (
        "بدون اعتبارنامه، چهار رقم پایانی شمارهٔ همراه درخواست را بدهید."
    ),
    "Not an appointment slot's id.": "شناسهٔ یک نوبت نیست.",
    "No service has this code.": "هیچ خدمتی این کد را ندارد.",
    "The most engaged citizens are named: personal:read is needed.": (
        "فعال‌ترین شهروندان با نام می‌آیند: دسترسی personal:read لازم است."
    ),
    "Requests are registered through the portal, the 137 centre or a partner app.": (
        "درخواست‌ها از راه درگاه، سامانهٔ ۱۳۷ یا برنامهٔ یک همکار ثبت می‌شوند."
    ),
    "Search text is 2 to 200 characters.": "متن جست‌وجو ۲ تا ۲۰۰ نویسه است.",
    # --- Open311 (GeoReport v2) --------------------------------------------------------------
    "'{name}' was sent more than once.": "'{name}' بیش از یک بار فرستاده شده است.",
    "'{name}' must be a whole number from 1 to {maximum}.": (
        "'{name}' باید عددی درست از ۱ تا {maximum} باشد."
    ),
    "'end_date' is before 'start_date'.": "'end_date' پیش از 'start_date' است.",
    "'start_date' and 'end_date' may not span more than 90 days.": (
        "فاصلهٔ 'start_date' و 'end_date' نباید بیش از ۹۰ روز باشد."
    ),
    "'status' must be open, closed or both (comma delimited).": (
        "'status' باید open، closed یا هر دو (جداشده با ویرگول) باشد."
    ),
    "'{name}' is not a date and time in W3C format, e.g. 2026-11-01T00:00:00Z.": (
        "'{name}' تاریخ و زمانی در قالب W3C نیست، مانند 2026-11-01T00:00:00Z."
    ),
    "'{name}' is out of range.": "'{name}' بیرون از بازه است.",
    "'service_request_id' names more than {MAX_IDS} requests.": (
        "'service_request_id' بیش از {MAX_IDS} درخواست را نام می‌برد."
    ),
    "The form is not UTF-8.": "فرم UTF-8 نیست.",
    "The form has more than {MAX_FORM_FIELDS} fields.": "فرم بیش از {MAX_FORM_FIELDS} فیلد دارد.",
    "'attribute[{code}]' was sent more than once.": (
        "'attribute[{code}]' بیش از یک بار فرستاده شده است."
    ),
    "Send the service request as application/x-www-form-urlencoded.": (
        "درخواست خدمت را به صورت application/x-www-form-urlencoded بفرستید."
    ),
    "A service_request_id is a tracking code: 16 digits, the last a check digit.": (
        "service_request_id یک کد رهگیری است: ۱۶ رقم که آخرینش رقم کنترل است."
    ),
    "Send the API key as api_key in the POSTed form or as 'Authorization: Bearer', never in "
    "the address.": (
        "کلید API را به صورت api_key در فرم POST یا به صورت 'Authorization: Bearer' بفرستید، "
        "هرگز در نشانی."
    ),
    "api_key and the Authorization header name different keys.": (
        "api_key و سرآیند Authorization دو کلید متفاوت را نام می‌برند."
    ),
    "'{field}' is one line of text.": "'{field}' یک خط متن است.",
    "'{field}' must be a number.": "'{field}' باید عدد باشد.",
    "'{field}' takes one value, not a list.": "'{field}' یک مقدار می‌گیرد، نه فهرست.",
    "'{field}' values are keys without commas.": "مقدارهای '{field}' کلیدهایی بی‌ویرگول‌اند.",
    "'{name}' must be a number (WGS 84 degrees).": "'{name}' باید عدد باشد (درجه‌های WGS 84).",
    "A location is required: lat and long, or address_string.": (
        "مکان لازم است: lat و long، یا address_string."
    ),
    "Send both lat and long, or neither.": "هم lat و هم long را بفرستید، یا هیچ‌کدام را.",
    "address_id is not known here: send lat and long, or address_string.": (
        "address_id در اینجا شناخته نیست: lat و long یا address_string را بفرستید."
    ),
    "description is required.": "description لازم است.",
    "first_name (and last_name) are required: the 137 centre answers the citizen.": (
        "first_name (و last_name) لازم‌اند: سامانهٔ ۱۳۷ به شهروند پاسخ می‌دهد."
    ),
    "phone is required: the citizen's mobile number (09…).": (
        "phone لازم است: شمارهٔ همراه شهروند (09…)."
    ),
    "service_code is required.": "service_code لازم است.",
    "Not a CitizenRequest id.": "شناسهٔ یک CitizenRequest نیست.",
    "A {request.status} request is not corrected.": "درخواستِ {request.status} اصلاح نمی‌شود.",
    "Give a new service, location or address.": "خدمت، مکان یا نشانی تازه‌ای بدهید.",
    "This point lies outside every region of the city; give an address too.": (
        "این نقطه بیرون از همهٔ منطقه‌های شهر است؛ نشانی را هم بدهید."
    ),
    "Add the format to the address: .xml or .json.": "قالب را به نشانی بیفزایید: .xml یا .json.",
    "The format must be .xml or .json.": "قالب باید .xml یا .json باشد.",
    "An api_key is required to create a service request.": (
        "برای ثبت درخواست خدمت، api_key لازم است."
    ),
    "Internal error; request id {request_id}.": "خطای داخلی؛ شناسهٔ درخواست {request_id}.",
    "Invalid api_key received.": "api_key نامعتبر است.",
    "Keys cannot be checked now; try again (request {request_id}).": (
        "اکنون نمی‌توان کلیدها را بررسی کرد؛ دوباره بکوشید (درخواست {request_id})."
    ),
    "No request of yours was registered with this token.": (
        "هیچ درخواستی از شما با این نشانه ثبت نشده است."
    ),
    "No request with this service_request_id was found.": (
        "هیچ درخواستی با این service_request_id یافت نشد."
    ),
    "No service has this service_code.": "هیچ خدمتی این service_code را ندارد.",
    "This jurisdiction_id is not served here; this endpoint serves "
    "{' or '.join(sorted(self.jurisdictions))}.": (
        "این jurisdiction_id در اینجا پشتیبانی نمی‌شود؛ این نقطهٔ پایانی "
        "{' or '.join(sorted(self.jurisdictions))} را پشتیبانی می‌کند."
    ),
    "Too many failed attempts with an api_key; retry later.": (
        "تلاش‌های ناموفق با api_key بیش از حد بوده است؛ بعداً دوباره بکوشید."
    ),
    "{ENDPOINT}/ serves no such resource.": "{ENDPOINT}/ چنین منبعی ندارد.",
    "{method} is not allowed here; use {methods}.": (
        "{method} در اینجا مجاز نیست؛ {methods} را به کار ببرید."
    ),
    # --- identifiers (شناسه‌ها): "invalid <kind>: <reason>" ----------------------------------
    "invalid {kind}: {reason}": "{kind} نامعتبر است: {reason}",
    "Invalid {kind}: {reason}.": "{kind} نامعتبر است: {reason}.",
    "national code": "کد ملی",
    "legal person id": "شناسهٔ ملی شخص حقوقی",
    "sheba": "شمارهٔ شبا",
    "bank code": "کد بانک",
    "bank reference": "شمارهٔ پیگیری بانکی",
    "postal code": "کد پستی",
    "renewal code": "کد نوسازی",
    "registry plate": "پلاک ثبتی",
    "tracking code": "کد رهگیری",
    "digits must be 0-9, Persian or Arabic-Indic": "رقم‌ها باید 0-9، فارسی یا عربی باشند",
    "prefix must be 9 digits": "پیشوند باید ۹ رقم باشد",
    "prefix must be 10 digits": "پیشوند باید ۱۰ رقم باشد",
    "must contain only digits": "باید تنها رقم داشته باشد",
    "must be 10 digits": "باید ۱۰ رقم باشد",
    "must be 11 digits": "باید ۱۱ رقم باشد",
    "all digits are equal": "همهٔ رقم‌ها یکسان‌اند",
    "digits 4 to 9 are all zero": "رقم‌های ۴ تا ۹ همه صفرند",
    "wrong check digit": "رقم کنترل نادرست است",
    "must start with IR": "باید با IR آغاز شود",
    "must contain only digits after IR": "پس از IR باید تنها رقم داشته باشد",
    "must be 24 digits after IR": "پس از IR باید ۲۴ رقم باشد",
    "wrong check digits": "رقم‌های کنترل نادرست است",
    "bank code must be 3 digits": "کد بانک باید ۳ رقم باشد",
    "account must be at most 19 digits": "شمارهٔ حساب باید حداکثر ۱۹ رقم باشد",
    "must be 3 digits": "باید ۳ رقم باشد",
    "must be 4 to 40 digits": "باید ۴ تا ۴۰ رقم باشد",
    "building and unit go together": "ساختمان و واحد با هم می‌آیند",
    "parts must be numbers": "بخش‌ها باید عدد باشند",
    "parts must be at most {MAX_PART_DIGITS} digits": (
        "بخش‌ها باید حداکثر {MAX_PART_DIGITS} رقم باشند"
    ),
    "parts must be positive": "بخش‌ها باید مثبت باشند",
    "is empty": "خالی است",
    "must have 4 or 6 parts": "باید ۴ یا ۶ بخش داشته باشد",
    "must look like section-main/sub": "باید به شکل section-main/sub باشد",
    "must be a string": "باید رشته باشد",
    "must contain only digits (0-9, Persian or Arabic-Indic)": (
        "باید تنها رقم داشته باشد (0-9، فارسی یا عربی)"
    ),
    "must be {TRACKING_CODE_DIGITS} digits": "باید {TRACKING_CODE_DIGITS} رقم باشد",
    "does not start with 0": "با 0 آغاز نمی‌شود",
    "wrong check digit (a digit mistyped?)": "رقم کنترل نادرست است (رقمی اشتباه تایپ شده؟)",
    # --- agencies (سازمان‌های بیرونی): "<agency>.<operation>: <summary>" ------------------------
    "{agency}.{operation}: {self.summary}": "{agency}.{operation}: {self.summary}",
    "failed": "ناموفق بود",
    "agency unavailable": "سازمان در دسترس نیست",
    "agency unavailable (recent calls failed; not retried yet)": (
        "سازمان در دسترس نیست (تماس‌های اخیر ناموفق بود؛ هنوز دوباره تلاش نشده است)"
    ),
    "agency did not answer in time": "سازمان به‌موقع پاسخ نداد",
    "agency rejected the request": "سازمان درخواست را رد کرد",
    # A schema extension misconfigured (gateway/schema/hooks.py, as strawberry words it).
    "Hook {hook_name} on {extension} must be callable, received {hook_fn!r}": (
        "قلاب {hook_name} در {extension} باید فراخواندنی باشد؛ {hook_fn!r} داده شده است"
    ),
}

# The libraries' messages that clients meet: graphql-core's parse, validation and coercion
# errors, strawberry's and starlette's refusals. Others fall back to their code's sentence.
GENERAL: dict[str, str] = {
    # parsing
    "Syntax Error: {detail}": "خطای نحوی: {detail}",
    "Expected {expected}, found {found}.": "{expected} انتظار می‌رفت، اما {found} آمد.",
    "Unexpected {token}.": "{token} نابجاست.",
    "Unterminated string.": "رشته بسته نشده است.",
    "Unexpected character: {char}.": "نویسهٔ نابجا: {char}.",
    "Invalid number, expected digit but got: {char}.": (
        "عدد نامعتبر: رقم انتظار می‌رفت اما {char} آمد."
    ),
    "Document contains more than {count} tokens. Parsing aborted.": (
        "سند بیش از {count} نشانه دارد. تجزیه متوقف شد."
    ),
    "Document is nested too deeply. Parsing aborted.": "سند بیش از حد تودرتوست. تجزیه متوقف شد.",
    # validation
    "Cannot query field '{field}' on type '{type}'.{suggestion}": (
        "فیلد '{field}' روی نوع '{type}' پرس‌وجوپذیر نیست.{suggestion}"
    ),
    " Did you mean {suggestions}?": " آیا منظورتان {suggestions} بود؟",
    " Did you mean to use an inline fragment on {suggestions}?": (
        " آیا می‌خواستید قطعهٔ درون‌خطی روی {suggestions} به کار ببرید؟"
    ),
    "Unknown argument '{argument}' on field '{field}'.{suggestion}": (
        "آرگومان '{argument}' روی فیلد '{field}' ناشناخته است.{suggestion}"
    ),
    "Unknown argument '{argument}' on directive '{directive}'.{suggestion}": (
        "آرگومان '{argument}' روی رهنمود '{directive}' ناشناخته است.{suggestion}"
    ),
    "Unknown type '{type}'.{suggestion}": "نوع '{type}' ناشناخته است.{suggestion}",
    "Unknown fragment '{fragment}'.": "قطعهٔ '{fragment}' ناشناخته است.",
    "Unknown directive '{directive}'.": "رهنمود '{directive}' ناشناخته است.",
    "Fragment '{fragment}' is never used.": "قطعهٔ '{fragment}' هرگز به کار نرفته است.",
    "Variable '{variable}' is never used.": "متغیر '{variable}' هرگز به کار نرفته است.",
    "Variable '{variable}' is never used in operation '{operation}'.": (
        "متغیر '{variable}' در عملیات '{operation}' هرگز به کار نرفته است."
    ),
    "Variable '{variable}' is not defined.": "متغیر '{variable}' تعریف نشده است.",
    "Variable '{variable}' is not defined by operation '{operation}'.": (
        "متغیر '{variable}' را عملیات '{operation}' تعریف نکرده است."
    ),
    "This anonymous operation must be the only defined operation.": (
        "این عملیات بی‌نام باید تنها عملیات تعریف‌شده باشد."
    ),
    "There can be only one operation named '{operation}'.": (
        "تنها یک عملیات می‌تواند '{operation}' نام داشته باشد."
    ),
    "There can be only one fragment named '{fragment}'.": (
        "تنها یک قطعه می‌تواند '{fragment}' نام داشته باشد."
    ),
    "There can be only one argument named '{argument}'.": (
        "تنها یک آرگومان می‌تواند '{argument}' نام داشته باشد."
    ),
    "There can be only one variable named '{variable}'.": (
        "تنها یک متغیر می‌تواند '{variable}' نام داشته باشد."
    ),
    "Field '{field}' argument '{argument}' of type '{type}' is required, but it was not "
    "provided.": (
        "آرگومان '{argument}' از نوع '{type}' برای فیلد '{field}' لازم است، اما داده نشده است."
    ),
    "Argument '{argument}' of type '{type}' is required, but it was not provided.": (
        "آرگومان '{argument}' از نوع '{type}' لازم است، اما داده نشده است."
    ),
    "Fragment cannot be spread here as objects of type '{parent}' can never be of type '{type}'.": (
        "قطعه را نمی‌توان اینجا گسترش داد، چون شیءهای نوع '{parent}' هرگز از نوع '{type}' نیستند."
    ),
    "Fragment '{fragment}' cannot be spread here as objects of type '{parent}' can never be "
    "of type '{type}'.": (
        "قطعهٔ '{fragment}' را نمی‌توان اینجا گسترش داد، چون شیءهای نوع '{parent}' هرگز از "
        "نوع '{type}' نیستند."
    ),
    "The directive '{directive}' can only be used once at this location.": (
        "رهنمود '{directive}' در این جا تنها یک بار به کار می‌رود."
    ),
    "Directive '{directive}' may not be used on {location}.": (
        "رهنمود '{directive}' را نمی‌توان روی {location} به کار برد."
    ),
    "Expected value of type '{type}' not to include unknown field '{field}', found: {value}.": (
        "مقدار از نوع '{type}' نباید فیلد ناشناختهٔ '{field}' را داشته باشد، اما آمد: {value}."
    ),
    "Expected value of type '{type}' to be an object, found: {value}.": (
        "مقدار از نوع '{type}' باید شیء باشد، اما آمد: {value}."
    ),
    "Expected value of type '{type}' not to be null.": ("مقدار از نوع '{type}' نباید null باشد."),
    "Anonymous Subscription must select only one top level field.": (
        "اشتراک بی‌نام باید تنها یک فیلد سطح بالا برگزیند."
    ),
    "Subscription '{name}' must select only one top level field.": (
        "اشتراک '{name}' باید تنها یک فیلد سطح بالا برگزیند."
    ),
    "Field '{field}' of type '{type}' must have a selection of subfields. Did you mean "
    "'{field_} {{ ... }}'?": (
        "فیلد '{field}' از نوع '{type}' باید زیرفیلدهایی برگزیند. آیا منظورتان "
        "'{field_} {{ ... }}' بود؟"
    ),
    "Field '{field}' must not have a selection since type '{type}' has no subfields.": (
        "فیلد '{field}' نباید گزینش داشته باشد، چون نوع '{type}' زیرفیلدی ندارد."
    ),
    "Fields '{field}' conflict because {reason}. Use different aliases on the fields to "
    "fetch both if this was intentional.": (
        "فیلدهای '{field}' با هم ناسازگارند، چون {reason}. اگر عمدی است، برای گرفتن هر دو "
        "نام‌های مستعار متفاوت به کار ببرید."
    ),
    "Cannot spread fragment '{fragment}' within itself.": (
        "قطعهٔ '{fragment}' را نمی‌توان درون خودش گسترش داد."
    ),
    "Cannot spread fragment '{fragment}' within itself via {path}.": (
        "قطعهٔ '{fragment}' را نمی‌توان از راه {path} درون خودش گسترش داد."
    ),
    "Variable '{variable}' of type '{type}' used in position expecting type '{expected}'.": (
        "متغیر '{variable}' از نوع '{type}' در جایی به کار رفته که نوع '{expected}' انتظار می‌رود."
    ),
    "Variable '{variable}' cannot be non-input type '{type}'.": (
        "متغیر '{variable}' نمی‌تواند از نوع غیرورودی '{type}' باشد."
    ),
    "Expected value of type '{type}', found {value}; {reason}": (
        "مقداری از نوع '{type}' انتظار می‌رفت، اما {value} آمد؛ {reason}"
    ),
    "Expected value of type '{type}', found {value}.": (
        "مقداری از نوع '{type}' انتظار می‌رفت، اما {value} آمد."
    ),
    "GraphQL introspection has been disabled, but the requested query contained the field "
    "'{field}'.": "درون‌نگری GraphQL خاموش است، اما پرس‌وجو فیلد '{field}' را دارد.",
    "Maximum introspection depth exceeded": "از بیشینهٔ عمق درون‌نگری گذشته است",
    # variables and values
    "Variable '{variable}' of required type '{type}' was not provided.": (
        "متغیر '{variable}' از نوع لازمِ '{type}' داده نشده است."
    ),
    "Variable '{variable}' of non-null type '{type}' must not be null.": (
        "متغیر '{variable}' از نوع ناتهی '{type}' نباید null باشد."
    ),
    "Variable '{variable}' has invalid value{path}: {reason}": (
        "متغیر '{variable}' مقدار نامعتبری دارد{path}: {reason}"
    ),
    "Variable '{variable}' got invalid value {value}; {reason}": (
        "متغیر '{variable}' مقدار نامعتبر {value} را گرفت؛ {reason}"
    ),
    "Int cannot represent non-integer value: {value}": (
        "Int نمی‌تواند مقدار غیرصحیح را نشان دهد: {value}"
    ),
    "Int cannot represent non 32-bit signed integer value: {value}": (
        "Int نمی‌تواند مقدار بیرون از عدد صحیح علامت‌دار ۳۲ بیتی را نشان دهد: {value}"
    ),
    "Float cannot represent non numeric value: {value}": (
        "Float نمی‌تواند مقدار غیرعددی را نشان دهد: {value}"
    ),
    "String cannot represent a non string value: {value}": (
        "String نمی‌تواند مقدار غیررشته‌ای را نشان دهد: {value}"
    ),
    "Boolean cannot represent a non boolean value: {value}": (
        "Boolean نمی‌تواند مقدار غیربولی را نشان دهد: {value}"
    ),
    "ID cannot represent a non-string and non-integer value: {value}": (
        "ID نمی‌تواند مقداری جز رشته یا عدد صحیح را نشان دهد: {value}"
    ),
    "Enum '{enum}' cannot represent non-enum value: {value}.{suggestion}": (
        "شمارشی '{enum}' نمی‌تواند مقدار غیرشمارشی را نشان دهد: {value}.{suggestion}"
    ),
    "Value '{value}' does not exist in '{enum}' enum.{suggestion}": (
        "مقدار '{value}' در شمارشی '{enum}' نیست.{suggestion}"
    ),
    "Field '{field}' of required type '{type}' was not provided.": (
        "فیلد '{field}' از نوع لازمِ '{type}' داده نشده است."
    ),
    "Field '{field}' is not defined by type '{type}'.{suggestion}": (
        "فیلد '{field}' را نوع '{type}' تعریف نکرده است.{suggestion}"
    ),
    "Expected type '{type}' to be an object.": "انتظار می‌رفت نوع '{type}' شیء باشد.",
    # operations and requests (graphql-core, strawberry, starlette)
    "Unknown operation named '{operation}'.": "عملیاتی به نام '{operation}' نیست.",
    'Unknown operation named "{operation}".': 'عملیاتی به نام "{operation}" نیست.',
    "Must provide operation name if query contains multiple operations.": (
        "اگر پرس‌وجو چند عملیات دارد، نام عملیات را بدهید."
    ),
    "Must provide an operation.": "عملیاتی بدهید.",
    "No GraphQL query found in the request": "در درخواست هیچ پرس‌وجوی GraphQL یافت نشد",
    "mutations are not allowed when using GET": "با GET جهش (mutation) مجاز نیست",
    "Subscriptions are not allowed when using GET": "با GET اشتراک (subscription) مجاز نیست",
    "GraphQL only supports GET and POST requests.": (
        "GraphQL تنها درخواست‌های GET و POST را می‌پذیرد."
    ),
    "Method Not Allowed": "این روش (method) مجاز نیست",
    "Unsupported content type": "نوع محتوا پشتیبانی نمی‌شود",
    "Unable to parse request body as JSON": "بدنهٔ درخواست به صورت JSON تجزیه نشد",
    "Bad request.": "درخواست نادرست.",
}

# Messages that are a protocol's words, which clients match: never translated.
VERBATIM = frozenset({"PersistedQueryNotFound"})

# When a message has no translation: its code's sentence, then the English.
BY_CODE: dict[str, str] = {
    "BAD_USER_INPUT": "ورودی نامعتبر است",
    "NOT_FOUND": "یافت نشد",
    "CONFLICT": "با وضعیت کنونی ناسازگار است",
    "UNAUTHENTICATED": "احراز هویت ناموفق بود",
    "FORBIDDEN": "دسترسی لازم را ندارید",
    "QUERY_TOO_COMPLEX": "عملیات از یک سقف فراتر رفته است",
    "PERSISTED_QUERY_NOT_FOUND": "پرس‌وجوی ماندگار یافت نشد",
    "BAD_REQUEST": "درخواست، درخواست GraphQL درستی نیست",
    "RATE_LIMITED": "درخواست‌ها بیش از حد است",
    "GRAPHQL_PARSE_FAILED": "سند، GraphQL درستی نیست",
    "GRAPHQL_VALIDATION_FAILED": "سند با طرح‌واره نمی‌خواند",
    "AGENCY_UNAVAILABLE": "سازمان بیرونی در دسترس نیست",
    "AGENCY_TIMEOUT": "سازمان بیرونی به‌موقع پاسخ نداد",
    "AGENCY_REJECTED": "سازمان بیرونی درخواست را رد کرد",
    "SERVICE_NOT_AVAILABLE_IN_REGION": "این خدمت در این منطقه ارائه نمی‌شود",
    "INTERNAL": "خطای داخلی",
}

_PART = re.compile(r"\{((?:[^{}]|\{[^{}]*\})*)\}")


def parts(template: str) -> list[str]:
    """The `{…}` parts of a template, in order (`{{` and `}}` are literal braces)."""
    return _PART.findall(template.replace("{{", "\0").replace("}}", "\1"))


@functools.cache
def _compiled() -> tuple[dict[str, str], list[tuple[re.Pattern[str], list[str], str]]]:
    exact: dict[str, str] = {}
    templates: list[tuple[int, re.Pattern[str], list[str], str]] = []
    for english, persian in {**GENERAL, **PERSIAN}.items():
        names = parts(english)
        if not names:
            exact[english.replace("{{", "{").replace("}}", "}")] = persian
            continue
        literal = _PART.split(english.replace("{{", "\0").replace("}}", "\1"))[::2]
        pattern = "(.*?)".join(
            re.escape(text.replace("\0", "{").replace("\1", "}")) for text in literal
        )
        # The most specific first: more literal text, fewer parts.
        templates.append((sum(map(len, literal)), re.compile(pattern, re.DOTALL), names, persian))
    templates.sort(key=lambda entry: -entry[0])
    return exact, [(pattern, names, persian) for _, pattern, names, persian in templates]


def _wrapper(pattern: re.Pattern[str]) -> bool:
    """A template of parts and punctuation alone ("{agency}.{operation}: {summary}") would
    match almost anything: it counts only when one of its parts is a known message."""
    return not any(c.isalpha() for c in _PART.sub("", pattern.pattern))


def _fill(values: dict[str, str], part: re.Match[str]) -> str:
    return values.get(part.group(1), part.group(0))


def to_persian(message: str) -> str | None:
    """The Persian of a message the gateway (or a library it uses) builds; None if unknown."""
    exact, templates = _compiled()
    found = exact.get(message)
    if found is not None:
        return found
    for pattern, names, persian in templates:
        match = pattern.fullmatch(message)
        if match is None:
            continue
        translated = {
            name: to_persian(value) if value else None
            for name, value in zip(names, match.groups(), strict=True)
        }
        if _wrapper(pattern) and not any(translated.values()):
            continue
        values = {
            name: translated[name] or value
            for name, value in zip(names, match.groups(), strict=True)
        }
        # Fill the Persian template's parts by name (a name may be any expression).
        filled = _PART.sub(
            functools.partial(_fill, values), persian.replace("{{", "\0").replace("}}", "\1")
        )
        return filled.replace("\0", "{").replace("\1", "}")
    return None


def persian_message(message: str, code: str) -> str:
    """What a Persian reader is shown: the translation, or the code's sentence and the
    English when there is none yet (the test names every such message of the gateway's)."""
    return to_persian(message) or f"{BY_CODE.get(code, BY_CODE['INTERNAL'])}: {message}"
