#!/usr/bin/env python3
"""Writes benign/realistic.txt: values real users send to web apps, one per
line, built from the lists below (passwords drawn with a fixed seed), so the
false-positive figures in docs/benchmarks.md can be reproduced."""
import random
import string

random.seed(2026)

names = """O'Brien|Sinéad O'Connor|D'Angelo|Renée d'Arc-Léger|Mary-Jane Watson|Jean-Luc Picard|Zoë Saldaña|
Björk Guðmundsdóttir|José Álvarez|François L'Écuyer|Ngũgĩ wa Thiong'o|Aoife Ní Fhearraigh|Ó Súilleabháin|
McDonald's|Dr. Martin Luther King, Jr.|Bobby Tables|Null Smith|Jim O'Neil-Smith|Ada Lovelace (née Byron)|
Señor Frog's|Dwayne "The Rock" Johnson|Catherine Zeta-Jones|Shaquille O'Neal|Conan O'Brien|Georgia O'Keeffe|
Li Wei|王伟|山田太郎|김민준|Мария Иванова|محمد علي|דוד כהן|Αλέξανδρος|Nguyễn Văn An|Şükrü Saracoğlu|Łukasz Żółć""".replace("\n", "").split("|")

addresses = """221B Baker St, London NW1 6XE|1600 Pennsylvania Ave NW, Washington, DC 20500|
Apt. #4, 12 rue de l'Église, 75001 Paris|P.O. Box 1234; Anchorage, AK 99501|c/o Mrs. O'Hara, 5 Main St.|
Flat 3/2, 10 Union Street, Glasgow|42 Select Road, Unit 7-B|1 Infinite Loop, Cupertino, CA 95014 (HQ)|
Calle Mayor, 5 - 3º Izq., 28013 Madrid|Musterstraße 12 / Hinterhaus, 10115 Berlin|東京都渋谷区神南1-2-3|
Building #5, Floor 2 & 3, Tech Park|Route 66 & 4th Ave (corner)|Suite 100-200, 5th Floor""".replace("\n", "").split("|")

contacts = """ada@example.com|o'brien@example.ie|first.last+tag@sub.example.co.uk|"quoted"@example.com|
user_name-01|@ada_lovelace|+1 (555) 123-4567|+44 20 7946 0958|555.123.4567 ext. 89|0800-FLOWERS|
#hashtag|@here @channel|ada+newsletter@example.com""".replace("\n", "").split("|")

searches = """union jack flag|select fit jeans|drop earrings|table runner|delete key cover|update firmware|
insert coin|cat bed|order by price|group by size|from scratch|where to buy|1 or 2 bedroom apartment|
and/or|rock & roll|black & white|5 or more|C&A|H&M|AT&T|Q&A|R&B|drag & drop|sleep mask|ping pong table|
echo dot|kill switch|find my iphone|type c cable|head & shoulders|tail light|more or less|time & date|
id card holder|copy paper a4|start button|union station|select comfort mattress|drop table legs|
create account|alter ego|exec chair|shell fish|bash guitar hero|python book|node lights|java coffee|
script font|iframe tv mount|alert bracelet|null modem cable|true religion jeans|false eyelashes|
1=1 math proof|2+2=4|x > y|a < b|"exact phrase"|-excluded +required|title:"foo bar"|
site:example.com|price < 100 & rating > 4|10" tablet|5' 10" tall|12' x 20' tarp|Levi's 501|
Men's shoes size 10½|women's t-shirt (XL)|kids' toys 3+|50% off|$19.99|€20|100% cotton|#1 bestseller|
cd /r/ music|mac & cheese recipe|how to drop a table in postgres|SQL injection prevention tips|
what does 'select *' do|<3 valentine gifts|:) smiley mug|;-) wink|:-( sad|O_o|¯\\_(ツ)_/¯|
c++ tutorial|c# vs java|.net core|node.js vs deno|/etc/hosts file explained|windows\\system32 error|
rm -rf meme shirt|sudo make me a sandwich|cat /dev/random poster|echo $PATH explained|
javascript: the good parts|<script> tag basics|onclick event guide|eval() considered harmful""".replace("\n", "").split("|")

comments = """Great product, would buy again!!!|Doesn't work as advertised; returned it (twice).|
I'm not sure... maybe? It's "fine", I guess.|5/5 - fast shipping & great support :)|
Arrived broken :( -- the box was crushed. Refund please?|Love it! <3 <3 <3|
Works with Windows 10/11 & macOS 14+ (tested).|Price went from $20 to $25?! Not cool.|
Step 1: open the box; step 2: plug it in; step 3: profit.|My son (age 7) loves it; my daughter, not so much.|
Best. Purchase. Ever.|"Select" the blue one, not the red one – trust me.|
Compared to brand X, it's 2x faster & 50% cheaper.|Size runs small -> order one size up.|
Q: Is it waterproof? A: Yes, up to 30m.|I rated it 4 stars because of the {minor} issues.|
Use code SAVE10 at checkout; it still works (as of 12/01).|The manual says "do not use with 220V" — be careful!|
Meh. 3/10 would not recommend.|It's the #1 tool for the job, hands down.|
Tried it on 3 devices: iPhone 15, Pixel 8 & Galaxy S23 — all good.|
Can't wait for v2.0!!! When's the release?|Ordered on Monday, got it Wednesday; impressive.|
Not bad for the price... though the 'premium' version is better.|It broke after 2 weeks :/|
Hi team, please update my address to: 12 Main St. (apt 4B). Thanks!|
Why does the app crash when I press 'Back' twice?|See attached screenshot (error code 0x80070005).|
Lol, this is 100% what I needed 😂😂|Dear Sir/Madam, I would like to cancel order #12345.|
Please call me at (555) 123-4567 between 9am-5pm.|The "Add to cart" button doesn't respond on Safari 17.|
I love cats; cat food is expensive though.|Rock & roll will never die!|
Fish & chips; mushy peas; a pint - perfect Friday.|Meet me at 5; time flies when you're having fun.|
Tom & Jerry | Cartoon Network | Season 1|It's 5 o'clock somewhere; time (for tea).|
Hello {{name}}, your order is ready.|Use ${var} in your template strings.|
He said "onward and upward" and left.|I'd give it 4.5/5 if I could; half stars please!|
Warning: contains nuts & soy.|To whom it may concern: please see below.|
Items: apples, oranges & pears (organic).|Code review: LGTM, ship it :shipit:|
Run `npm install` and then `npm start` to try it.|In SQL, use WHERE id = ? with a parameter.|
The formula is (a+b)^2 = a^2 + 2ab + b^2.|if (x > 5 && y < 3) { return true; } // my pseudo-code|
Path is C:\\Users\\Public\\Documents, not D:\\.|See ../docs/README.md for details.|
The file is at /home/ada/projects/site/index.html.|My password manager says my old pass was weak lol""".replace("\n", "").split("|")

html = """<p>Hello <strong>world</strong></p>|<p>This is <em>important</em> &amp; urgent.</p>|
<p><a href="https://example.com/docs?page=2&amp;lang=en">Read the docs</a></p>|
<ul><li>First item</li><li>Second item</li></ul>|<ol><li>Step one</li><li>Step two</li></ol>|
<blockquote>To be, or not to be</blockquote>|<h2>Introduction</h2><p>Welcome!</p>|
<p><img src="/uploads/2024/01/cat.png" alt="A cat" width="300" height="200"></p>|
<p>Line one<br>Line two</p>|<p style="text-align: center;">Centered text</p>|
<p><span style="color: #ff0000;">Red text</span></p>|<table><tr><td>A</td><td>B</td></tr></table>|
<pre><code>const x = 1;</code></pre>|<p>Use the &lt;script&gt; tag carefully.</p>|
<p>5 &gt; 3 and 2 &lt; 4</p>|<h1 class="title">Big title</h1>|<div class="ql-editor"><p>Quill output</p></div>|
<p><a href="mailto:ada@example.com">Email me</a></p>|<p><a href="#section-2">Jump</a></p>|
<figure class="image"><img src="https://cdn.example.com/i/1.jpg"><figcaption>Caption</figcaption></figure>|
<p><s>old price</s> <strong>new price</strong></p>|<p><u>underlined</u> and <sub>sub</sub>/<sup>sup</sup></p>|
<hr><p>After the rule</p>|<p><a href="https://www.youtube.com/watch?v=dQw4w9WgXcQ" target="_blank" rel="noopener">video</a></p>|
<p dir="rtl">مرحبا</p>|<p>Emoji 🎉 and &nbsp; spaces</p>""".replace("\n", "").split("|")

markdown = """**bold** and _italic_|# Heading\\n\\nSome text|[link](https://example.com/a?b=c)|
![image](/img/a.png)|`inline code`|- item one\\n- item two|> quoted text|1. first\\n2. second|
Use `git log --oneline | head` to see commits|Run `ls -la` to list the files|
```js\\nconsole.log("hi")\\n```|~~strikethrough~~|| col | col |\\n|---|---|""".replace("\n", "").split("|")

tokens = """eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c|
s%3AJHm0ZnBcB5vGRy7ZxCYxQpbVmBRnFy3J.sQ9zS3rT4aB%2Bcd5Ef6Gh7Ij8Kl9Mn0Op1Qr2St3Uv|550e8400-e29b-41d4-a716-446655440000|
d41d8cd98f00b204e9800998ecf8427e|e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855|
dGhpcyBpcyBhIHRlc3Q=|YWRhOmNvcnJlY3QgaG9yc2UgYmF0dGVyeSBzdGFwbGU=|ghp_1234567890abcdefABCDEF1234567890abcd|
1//0gLb-abcdefGHIJKLmnop-QRSTUVwxyz|ya29.a0AfH6SMBx-abc_DEF|AKIAIOSFODNN7EXAMPLE|
$2b$12$KIXQJ1c5p2g6x6yH3Qe0UuK8u2Q6Yx1s2T3v4W5x6Y7z8A9b0C1d2|pbkdf2_sha256$260000$abc$def=""".replace("\n", "").split("|")

urls = """https://www.example.com/|https://example.com/search?q=shoes&sort=price_asc&page=2|
https://shop.example.com/p/123?utm_source=newsletter&utm_medium=email#reviews|/account/orders?status=open|
/products/lamp-2000|https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42s|https://maps.google.com/?q=51.5,-0.12|
http://localhost:3000/callback?code=abc123&state=xyz|https://github.com/org/repo/blob/main/src/index.js#L10-L20|
ftp://files.example.com/pub/readme.txt|https://例子.测试/路径|https://en.wikipedia.org/wiki/SQL_injection|
https://example.com/a/b/../c|//cdn.example.com/lib.js|/redirect?to=%2Fdashboard|mailto:ada@example.com?subject=Hi|
tel:+15551234567|https://docs.example.com/v2/api#section-3.1|../images/logo.png|./styles/main.css|
https://example.com/path/with%20spaces/and%2Fslashes|https://user@example.com:8443/x""".replace("\n", "").split("|")

files = """report (final).pdf|my file's name.docx|C:\\fakepath\\photo.jpg|IMG_20240101_123456.jpg|
résumé 2024.pdf|data-export_2024-01-01.csv|archive.tar.gz|Screenshot 2024-01-01 at 10.00.00.png|
invoice #123.pdf|notes [draft].txt|budget & plan.xlsx|photo (1).jpeg|..hidden-looking name.txt""".replace("\n", "").split("|")

numbers = """42|-5|3.14159|1,000,000.00|1.000.000,00|50%|$1,299.99|€ 20,50|¥1000|3/4 cup|
10:30-11:45|2024-01-01|01/12/2024|2024-01-01T10:00:00Z|1e-9|0x1F|x^2 + y^2 = r^2|
(1 + 2) * 3 = 9|100 / 4 = 25|5 - 3 + 1|12 * 12 = 144|a = b + c|n! = n * (n-1)!|
90°|-40 °C = -40 °F|1/2 + 1/4 = 3/4|between 1 and 5|1 to 10|#42|No. 7|v2.0.1|1.2.3-beta+exp.sha.5114f85""".replace("\n", "").split("|")

dev = """SELECT queries are slow on this table|use git log --oneline then git rebase -i|npm i express@5 --save|
if (x > 5) return;|for (let i = 0; i < n; i++) {}|const { a, b } = obj;|arr.map(x => x * 2)|
docker run -p 8080:80 nginx|kubectl get pods -n default|SELECT COUNT(*) typically needs an index|
The WHERE clause filters rows|JOIN vs subquery performance|How do I escape a ' in SQL?|
What's the difference between == and ===?|Regex: ^[a-z0-9_-]{3,16}$|printf("%d\\n", x);|
my.config.key = value|user[name]=ada style params|curl is a great tool|cat photos are the best|
ls is short for list|echo chamber effect|Error: ENOENT: no such file or directory""".replace("\n", "").split("|")

languages = """你好，世界|東京は今日、雨です。|안녕하세요 여러분|Привет, как дела?|مرحبا بالعالم|שלום עולם|
नमस्ते दुनिया|Γειά σου Κόσμε|Merhaba dünya!|Xin chào thế giới|สวัสดีชาวโลก|Здравейте!|
¿Dónde está la biblioteca?|Ça va? Très bien, merci !|Grüß Gott, wie geht's?|Ærø og Øresund|
😀😃😄 🎉🎊|👍🏽 ok|❤️ love it|★★★★☆""".replace("\n", "").split("|")

filters = """price_asc|created_at:desc|-updated_at|name,email,created_at|status:open OR status:pending|
tag:"summer sale"|category=shoes&color=red|in:title "release notes"|is:open is:pr|
author:ada label:bug|{"status":"active"}|{"page":2,"size":50}|[1,2,3]|true|null""".replace("\n", "").split("|")

def password():
    alphabet = string.ascii_letters + string.digits + "!@#$%^&*()-_=+[]{};:'\",.<>/?\\|`~"
    return "".join(random.choice(alphabet) for _ in range(random.randint(10, 24)))

passphrases = """correct horse battery staple|Tr0ub4dor&3|P@ssw0rd!|hunter2|ILoveMyDog2024!|
MyP@ss'word#1|Summer2024!!|qwerty123$|letmein;please|open sesame 42|S3cur3*P@$$|
CorrectHorse-Battery_Staple!|p4ss(w0rd)|"quoted" pass|pass' or what|x'-#Fq9!""".replace("\n", "").split("|")

values = names + addresses + contacts + searches + comments + html + markdown + tokens + urls + files
values += numbers + dev + languages + filters + passphrases + [password() for _ in range(300)]
values = [v for v in values if v and "\n" not in v]
with open("benign/realistic.txt", "w") as out:
    out.write("\n".join(values) + "\n")
print(len(values), "values")
