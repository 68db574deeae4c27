//! The people who sign in: names from many languages, addresses from many countries, e-mail
//! addresses, and passwords as password managers make them.

use rand::seq::SliceRandom;
use rand::Rng;

/// Given names, with the apostrophes, accents, hyphens and scripts real users have.
const GIVEN: &[&str] = &[
    "Zoë",
    "Seán",
    "Siobhán",
    "José",
    "François",
    "Łukasz",
    "Søren",
    "Ana-María",
    "Jean-Luc",
    "Mary Kate",
    "D'Arcy",
    "Renée",
    "Björk",
    "Nguyễn",
    "Aaliyah",
    "Muhammad",
    "Oluwaseun",
    "Thandiwe",
    "Priya",
    "Hiroshi",
    "美咲",
    "Иван",
    "Αλέξανδρος",
    "Zoltán",
    "İlkay",
    "Chloé",
    "O'Neil",
    "Nuñez",
    "Saoirse",
    "Ξένια",
    "محمد",
    "שרה",
    "John",
    "Emma",
    "Liam",
    "Olivia",
];

/// Family names: O'Brien and Ó Súilleabháin, the usual suspects of a SQL-minded WAF.
const FAMILY: &[&str] = &[
    "O'Brien",
    "Ó Súilleabháin",
    "D'Angelo",
    "McDonald",
    "van der Berg",
    "de la Cruz",
    "Smith-Jones",
    "Müller",
    "Šťastný",
    "Ørsted",
    "García Márquez",
    "Nakamura",
    "Dvořák",
    "St. John",
    "Al-Rashid",
    "N'Diaye",
    "Le Pen",
    "O'Connor-Walsh",
    "Select",
    "Union",
    "Drop",
    "Null",
    "Or",
    "Anderson",
    "Johnson",
    "Kowalski",
    "Øvregård",
    "Đorđević",
];

/// Company and display names with `&`, quotes and dashes.
const COMPANIES: &[&str] = &[
    "Johnson & Sons",
    "AT&T",
    "Ben & Jerry's",
    "Procter & Gamble",
    "O'Reilly Media",
    "Smith, Jones & Partners — Legal",
    "\"Blue Harbor\" Ltd.",
    "Müller & Söhne GmbH",
    "L'Oréal",
    "Marks & Spencer",
    "100% Organic; Inc.",
    "Select Comfort",
];

/// Street addresses from several countries.
const STREETS: &[&str] = &[
    "12 O'Connell Street Upper",
    "Rue de l'Église 4, Bât. B",
    "Calle 13 #45-67, Apto 801",
    "Königstraße 1a",
    "1-2-3 Shibuya, Shibuya-ku",
    "Flat 3/2, 45 St. Vincent Crescent",
    "221B Baker Street",
    "ul. Marszałkowska 10/12 m. 5",
    "Av. Paulista, 1578 - Bela Vista",
    "P.O. Box 1234",
    "Apt. #5 - 1600 Pennsylvania Ave NW",
    "Москва, ул. Тверская, д. 7",
];

const CITIES: &[&str] = &[
    "Dún Laoghaire",
    "Saint-Étienne",
    "São Paulo",
    "Zürich",
    "Kraków",
    "Tōkyō",
    "Reykjavík",
    "Coeur d'Alene",
    "Winston-Salem",
    "Washington, D.C.",
    "Ho Chi Minh City",
    "Москва",
];

const POSTAL: &[&str] = &[
    "A96 K2X7",
    "42000",
    "01310-200",
    "8001",
    "00-001",
    "150-0002",
    "101",
    "83814",
    "27101-1234",
    "SW1A 1AA",
    "H0H 0H0",
    "75008",
];

const COUNTRIES: &[&str] = &[
    "IE", "FR", "BR", "CH", "PL", "JP", "IS", "US", "GB", "CA", "VN",
];

const DOMAINS: &[&str] = &[
    "contoso.com",
    "outlook.com",
    "gmail.com",
    "fabrikam.co.uk",
    "example.ie",
    "mail.example.org",
];

/// A person who signs up, signs in or resets a password.
#[derive(Clone, Debug)]
pub struct Person {
    pub given: String,
    pub family: String,
    pub display: String,
    pub email: String,
    pub company: String,
    pub street: String,
    pub city: String,
    pub postal: String,
    pub country: String,
    pub phone: String,
    pub password: String,
}

fn pick<R: Rng>(rng: &mut R, list: &[&str]) -> String {
    list.choose(rng).copied().unwrap_or_default().to_string()
}

impl Person {
    /// A random person.
    pub fn random<R: Rng>(rng: &mut R) -> Person {
        let given = pick(rng, GIVEN);
        let family = pick(rng, FAMILY);
        let local: String = format!("{given}.{family}")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '\'' || *c == '-')
            .collect::<String>()
            .to_ascii_lowercase();
        let local = if local.trim_matches('.').is_empty() {
            format!("user{}", rng.gen_range(1..100_000))
        } else {
            // `+tags` and apostrophes are valid in the local part and used.
            match rng.gen_range(0..4) {
                0 => format!("{}+signin", local.trim_matches('.')),
                _ => local.trim_matches('.').to_string(),
            }
        };
        let display = match rng.gen_range(0..3) {
            0 => format!("{family}, {given}"),
            1 => format!(
                "{given} \"{}\" {family}",
                given.chars().take(3).collect::<String>()
            ),
            _ => format!("{given} {family}"),
        };
        Person {
            email: format!("{local}@{}", pick(rng, DOMAINS)),
            company: pick(rng, COMPANIES),
            street: pick(rng, STREETS),
            city: pick(rng, CITIES),
            postal: pick(rng, POSTAL),
            country: pick(rng, COUNTRIES),
            phone: format!(
                "+{} ({}) {}-{}",
                rng.gen_range(1..99),
                rng.gen_range(100..999),
                rng.gen_range(100..999),
                rng.gen_range(1000..9999)
            ),
            password: password(rng),
            given,
            family,
            display,
        }
    }
}

/// A password as a password manager generates one: 12 to 64 characters drawn from every
/// printable ASCII character, so quotes, `--`, `<`, `;`, `/*` and SQL words all occur.
pub fn password<R: Rng>(rng: &mut R) -> String {
    let len = rng.gen_range(12..=64);
    let mut p: String = (0..len)
        .map(|_| char::from(rng.gen_range(0x21u8..=0x7e)))
        .collect();
    // Now and then a passphrase with spaces, or one that reads like an attack.
    match rng.gen_range(0..20) {
        0 => p = format!("correct horse battery {}", &p[..6]),
        1 => p = format!("' OR 1=1 --{}", &p[..4]),
        2 => p = format!("<script>{}</script>", &p[..5]),
        3 => p = format!("x'; DROP TABLE users;--{}", &p[..3]),
        _ => {}
    }
    p
}

/// An Entra application client secret (`Xy8Q~...`: 40 characters with `~`, `.`, `-`, `_`).
pub fn secret<R: Rng>(rng: &mut R) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~.-_";
    let mut s: String = (0..3)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..62)]))
        .collect();
    s.push_str("Q~");
    s.extend((0..35).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])));
    s
}
