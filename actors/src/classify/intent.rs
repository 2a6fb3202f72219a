//! The local intent classifier: confirm / reschedule / cancel / unclear, with a
//! calibrated confidence, in well under a millisecond and without any model file
//! (a trained model, [`super::model`], can be blended in with
//! [`LocalClassifier::with_model`]).
//!
//! How it works:
//! 1. **Normalisation** (`text::normalize`): the first [`MAX_CHARS`] characters are
//!    lowercased, accents are stripped ("sí" → "si", "estaré" → "estare"), apostrophes
//!    are dropped so "can't" → "cant" and "I'll" → "ill", runs of a repeated letter
//!    collapse to one ("yesss" → "yes", "cancell" → "cancel"; the lexicon is collapsed
//!    the same way), emoji become pseudo-words (👍 ✅ 👌 🙏 → yes, 👎 ❌ → no, 🤔 → hedge,
//!    🛑 → stop), and punctuation splits the text into clauses (`?` is remembered).
//! 2. **Cue matching**: a lexicon of words and phrases ([`LEXICON`]; a trailing `*`
//!    matches a prefix, e.g. `cancel*` covers "cancelled", "cancelar", "cancelen") is
//!    matched longest-first, so "no problem", "can't wait" or "not sure" are read as
//!    one cue before "no", "can't" or "not" could be. A word matching nothing is
//!    compared with a few key words at edit distance 1 (2 for long words), with
//!    transpositions: "confrim", "cancle", "resheduele".
//! 3. **Evidence**: negators ("not", "won't", "can't", "unable", "no", "nunca", "não",
//!    "no need", "don't want") within five words before an attendance or confirmation
//!    cue in the same clause turn it into cancel evidence ("I won't be able to come",
//!    "no puedo ir", "not confirmed"); before a cancel or reschedule cue they cancel
//!    that cue ("no need to cancel", "don't want to reschedule"). Soft rescheduling
//!    cues ("later", "available", "another", a day or time) count only inside a request
//!    ("can we …", "?"), so "Yes see you Tuesday at 3" stays a confirmation.
//!    "might"/"maybe" followed by "late" is about lateness and right before a time
//!    ("maybe Monday?") proposes it; neither is a hedge. Coming, said in a clause that
//!    is not a question, is an answer even when another clause asks something ("I'll
//!    be there. Is there parking?"). After a contrast word ("but", "pero") the rest of
//!    the reply alone decides when it is decisive ("I was going to cancel but I'll
//!    come").
//! 4. **Scores → probabilities**: each intent gets a score from its cues; mixed messages
//!    are settled by precedence — a request for another time beats cancel and confirm
//!    ("no I can't make it, can we do Friday" → reschedule), cancel beats a bare yes
//!    ("yes cancel it"), a hedge damps confirm ("I think so"), and "stop texting me" can
//!    never confirm. The scores are logits of a softmax over the four intents, with an
//!    "unclear" prior of 1, so one clear cue gives ≈ 0.9, several agreeing cues ≈ 0.99,
//!    and conflicting or weak cues fall below [`CONFIDENCE_FLOOR`].
//!
//! Confidence semantics: for confirm / reschedule / cancel it is that intent's
//! probability (always ≥ [`CONFIDENCE_FLOOR`]). For `Unclear` it is the unclear
//! probability when that is the model's top answer — high for a hedge or an unrelated
//! question, below one half when the reply matched nothing (an unknown word may well be
//! an answer the lexicon lacks) — and otherwise one minus the probability of the
//! actionable intent that led below the floor. Either way it estimates the probability
//! that the reported intent is right; `actors/tests/classifier.rs` prints accuracy per
//! confidence band.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ports::providers::{Classification, Classifier, Intent, ProviderError};
use crate::ports::BoxFuture;

use super::model::{index, NaiveBayes};
use super::text::{edit_distance, normalize, normalize_word, Normalized, Token};

/// Below this probability an actionable intent is reported `Unclear`.
pub const CONFIDENCE_FLOOR: f64 = 0.7;

pub use super::text::MAX_CHARS;

/// The `source` of every classification made here.
pub const SOURCE: &str = "local";

/// What a word or phrase of the lexicon says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cue {
    /// An affirmative answer: yes, ok, sure, sí, oui, sim, 👍.
    Yes,
    /// A negative answer: no, nope, nah, 👎.
    No,
    /// An explicit confirmation: "confirmed", "see you", "sounds good", "ahí estaré".
    Confirm,
    /// An acknowledgement: great, perfect, fine, all good.
    Ack,
    /// Thanks, gracias, merci, obrigado.
    Polite,
    /// "don't need", "no need", "don't want": a refusal on its own, a negator before
    /// another cue ("no need to cancel", "don't need to come").
    NotNeeded,
    /// Coming to the appointment: "be there", "make it", come, attend, ir, asistir.
    Attend,
    /// not, don't, won't, can't, unable, nunca, não.
    Negator,
    /// cancel*, annul*, remove, "don't need", "no longer".
    Cancel,
    /// An explicit request to move: reschedule, postpone, move, change, instead,
    /// "another day", "otro horario".
    Resched,
    /// later / earlier / sooner: a new time, inside a request.
    FlexTime,
    /// available, opening, slot, book: a new slot, when a day or time is named.
    FlexSlot,
    /// A day, date, time of day or clock time.
    When,
    /// A request: "can we", "could I", "is it possible", "podemos".
    Request,
    /// A hedge: "I think", "not sure", "let you know", "tal vez", 🤔.
    Hedge,
    /// maybe / might / probably: a hedge unless it is about being late.
    SoftHedge,
    /// A question about something else: where, address, who, "how much", "what time".
    Info,
    /// still: with a question mark, checking the appointment ("is it still at 3?").
    Still,
    /// late (neutralises a preceding soft hedge: "might be 10 minutes late").
    Late,
    /// "stop texting me", "don't text me", unsubscribe inside a longer message.
    Stop,
    /// The customer will rebook later on their own: "I'll call", "call you".
    Deferred,
    /// A greeting: read so that "good morning" is not taken for "good".
    Greeting,
}

/// The lexicon: phrases of space-separated words, written plainly (they go through
/// the same normalisation as replies); a trailing `*` makes a word a prefix.
/// At each position the longest phrase wins; among equals, the first listed.
const LEXICON: &[(&str, Cue)] = &[
    // --- multi-word phrases that would otherwise be misread word by word ---
    ("no problem", Cue::Confirm),
    ("not a problem", Cue::Confirm),
    ("no worries", Cue::Confirm),
    ("no worry", Cue::Confirm),
    ("dont worry", Cue::Confirm),
    ("no hay problema", Cue::Confirm),
    ("sin problema", Cue::Confirm),
    ("cant wait", Cue::Confirm),
    ("can not wait", Cue::Confirm),
    ("wouldnt miss", Cue::Confirm),
    ("would not miss", Cue::Confirm),
    ("wont miss", Cue::Confirm),
    ("will not miss", Cue::Confirm),
    ("not sure", Cue::Hedge),
    ("no se", Cue::Hedge),
    ("dont know", Cue::Hedge),
    ("do not know", Cue::Hedge),
    ("no longer", Cue::Cancel),
    ("no need", Cue::NotNeeded),
    ("not necessary", Cue::NotNeeded),
    ("no hace falta", Cue::NotNeeded),
    ("no es necesario", Cue::NotNeeded),
    ("no necesito", Cue::NotNeeded),
    ("do not want", Cue::NotNeeded),
    ("not interested", Cue::Cancel),
    ("forget it", Cue::Cancel),
    ("dont bother", Cue::Cancel),
    ("dont need", Cue::NotNeeded),
    ("do not need", Cue::NotNeeded),
    ("wont need", Cue::NotNeeded),
    ("not needed", Cue::Cancel),
    ("dont want", Cue::NotNeeded),
    ("take me off", Cue::Cancel),
    ("call off", Cue::Cancel),
    ("didnt book", Cue::Info),
    ("did not book", Cue::Info),
    ("never booked", Cue::Info),
    ("dont text", Cue::Stop),
    ("do not text", Cue::Stop),
    ("dont message", Cue::Stop),
    ("dont contact", Cue::Stop),
    ("no more texts", Cue::Stop),
    ("no more messages", Cue::Stop),
    ("leave me alone", Cue::Stop),
    ("peut etre", Cue::Hedge),
    ("good morning", Cue::Greeting),
    ("good afternoon", Cue::Greeting),
    ("good evening", Cue::Greeting),
    ("good day", Cue::Greeting),
    ("buenos dias", Cue::Greeting),
    ("buenas tardes", Cue::Greeting),
    ("buenas noches", Cue::Greeting),
    ("buen dia", Cue::Greeting),
    ("bonjour", Cue::Greeting),
    ("bom dia", Cue::Greeting),
    ("boa tarde", Cue::Greeting),
    ("no estoy segur*", Cue::Hedge),
    ("not certain", Cue::Hedge),
    ("ill confirm", Cue::Hedge),
    ("i will confirm", Cue::Hedge),
    ("confirm later", Cue::Hedge),
    ("not this time", Cue::Cancel),
    ("elsewhere", Cue::Cancel),
    ("somewhere else", Cue::Cancel),
    ("another provider", Cue::Cancel),
    ("another doctor", Cue::Cancel),
    ("another clinic", Cue::Cancel),
    ("another office", Cue::Cancel),
    ("found another", Cue::Cancel),
    ("id like", Cue::Request),
    ("if thats ok", Cue::Request),
    ("if thats okay", Cue::Request),
    ("if that works", Cue::Request),
    // --- yes ---
    ("yes", Cue::Yes),
    ("yeah", Cue::Yes),
    ("yea", Cue::Yes),
    ("yeh", Cue::Yes),
    ("ya", Cue::Yes),
    ("ye", Cue::Yes),
    ("yep", Cue::Yes),
    ("yup", Cue::Yes),
    ("yepers", Cue::Yes),
    ("aye", Cue::Yes),
    ("yessir", Cue::Yes),
    ("yesh", Cue::Yes),
    ("ofc", Cue::Yes),
    ("yas", Cue::Yes),
    ("yse", Cue::Yes),
    ("ys", Cue::Yes),
    ("y", Cue::Yes),
    ("ok", Cue::Yes),
    ("okay", Cue::Yes),
    ("okey", Cue::Yes),
    ("oki", Cue::Yes),
    ("okie", Cue::Yes),
    ("k", Cue::Yes),
    ("sure", Cue::Yes),
    ("of course", Cue::Yes),
    ("absolutely", Cue::Yes),
    ("definitely", Cue::Yes),
    ("certainly", Cue::Yes),
    ("roger", Cue::Yes),
    ("alright", Cue::Yes),
    ("all right", Cue::Yes),
    ("affirmative", Cue::Yes),
    ("si", Cue::Yes),
    ("claro", Cue::Yes),
    ("de acuerdo", Cue::Yes),
    ("vale", Cue::Yes),
    ("dale", Cue::Yes),
    ("por supuesto", Cue::Yes),
    ("oui", Cue::Yes),
    ("daccord", Cue::Yes),
    ("sim", Cue::Yes),
    ("emjyes", Cue::Yes),
    ("bet", Cue::Yes),
    ("aight", Cue::Yes),
    ("ight", Cue::Yes),
    ("yah", Cue::Yes),
    ("yuh", Cue::Yes),
    ("for sure", Cue::Yes),
    ("fosho", Cue::Yes),
    ("np", Cue::Confirm),
    ("im in", Cue::Confirm),
    ("count on", Cue::Confirm),
    ("planning on it", Cue::Confirm),
    ("plan on it", Cue::Confirm),
    ("esta bien", Cue::Ack),
    ("todo bien", Cue::Ack),
    ("muy bien", Cue::Ack),
    ("ta bom", Cue::Ack),
    ("tudo bem", Cue::Ack),
    ("beleza", Cue::Ack),
    ("cest note", Cue::Ack),
    ("entendu", Cue::Ack),
    ("ca marche", Cue::Confirm),
    // --- no ---
    ("no", Cue::No),
    ("nope", Cue::No),
    ("nah", Cue::No),
    ("nop", Cue::No),
    ("naw", Cue::No),
    ("emjno", Cue::No),
    // --- confirm ---
    ("confirm*", Cue::Confirm),
    ("see you", Cue::Confirm),
    ("see u", Cue::Confirm),
    ("see ya", Cue::Confirm),
    ("c u", Cue::Confirm),
    ("nos vemos", Cue::Confirm),
    ("ahi estar*", Cue::Confirm),
    ("alli estar*", Cue::Confirm),
    ("aqui estar*", Cue::Confirm),
    ("sin falta", Cue::Confirm),
    ("serai la", Cue::Confirm),
    ("estarei la", Cue::Confirm),
    ("will do", Cue::Confirm),
    ("got it", Cue::Confirm),
    ("sounds good", Cue::Confirm),
    ("sounds great", Cue::Confirm),
    ("works", Cue::Confirm),
    ("that works", Cue::Confirm),
    ("works for me", Cue::Confirm),
    ("work for me", Cue::Confirm),
    ("in my calendar", Cue::Confirm),
    ("correct", Cue::Confirm),
    ("on my calendar", Cue::Confirm),
    ("looking forward", Cue::Confirm),
    ("count me in", Cue::Confirm),
    // --- acknowledgements ---
    ("perfect*", Cue::Ack),
    ("great", Cue::Ack),
    ("awesome", Cue::Ack),
    ("excellent", Cue::Ack),
    ("cool", Cue::Ack),
    ("good", Cue::Ack),
    ("fine", Cue::Ack),
    ("all good", Cue::Ack),
    ("all set", Cue::Ack),
    ("good to go", Cue::Ack),
    ("noted", Cue::Ack),
    ("gotcha", Cue::Ack),
    ("genial", Cue::Ack),
    ("bueno", Cue::Ack),
    ("listo", Cue::Ack),
    ("entendido", Cue::Ack),
    ("parfait", Cue::Ack),
    ("combinado", Cue::Ack),
    // --- thanks ---
    ("thanks", Cue::Polite),
    ("thank", Cue::Polite),
    ("thx", Cue::Polite),
    ("thnx", Cue::Polite),
    ("ty", Cue::Polite),
    ("tysm", Cue::Polite),
    ("appreciate*", Cue::Polite),
    ("gracias", Cue::Polite),
    ("merci", Cue::Polite),
    ("obrigad*", Cue::Polite),
    ("emjpol", Cue::Polite),
    // --- attendance ---
    ("be there", Cue::Attend),
    ("make it", Cue::Attend),
    ("make", Cue::Attend),
    ("get there", Cue::Attend),
    ("do it", Cue::Attend),
    ("come", Cue::Attend),
    ("coming", Cue::Attend),
    ("attend*", Cue::Attend),
    ("go", Cue::Attend),
    ("going", Cue::Attend),
    ("voy", Cue::Attend),
    ("vamos", Cue::Attend),
    ("ir", Cue::Attend),
    ("asisti*", Cue::Attend),
    ("venir", Cue::Attend),
    ("vengo", Cue::Attend),
    ("llegar", Cue::Attend),
    ("estare", Cue::Attend),
    ("estaremos", Cue::Attend),
    ("estarei", Cue::Attend),
    // --- negators ---
    ("not", Cue::Negator),
    ("dont", Cue::Negator),
    ("doesnt", Cue::Negator),
    ("didnt", Cue::Negator),
    ("wont", Cue::Negator),
    ("cant", Cue::Negator),
    ("cannot", Cue::Negator),
    ("couldnt", Cue::Negator),
    ("wouldnt", Cue::Negator),
    ("isnt", Cue::Negator),
    ("unable", Cue::Negator),
    ("never", Cue::Negator),
    ("nunca", Cue::Negator),
    ("nao", Cue::Negator),
    ("pas", Cue::Negator),
    // --- cancel ---
    ("cancel*", Cue::Cancel),
    ("annul*", Cue::Cancel),
    ("anular", Cue::Cancel),
    ("desmarcar", Cue::Cancel),
    ("remove", Cue::Cancel),
    ("delete", Cue::Cancel),
    ("skip", Cue::Cancel),
    ("skipping", Cue::Cancel),
    ("withdraw", Cue::Cancel),
    ("desistir", Cue::Cancel),
    // --- reschedule ---
    ("resched*", Cue::Resched),
    ("reprogram*", Cue::Resched),
    ("reagend*", Cue::Resched),
    ("remarc*", Cue::Resched),
    ("postpon*", Cue::Resched),
    ("pospon*", Cue::Resched),
    ("aplaz*", Cue::Resched),
    ("adelant*", Cue::Resched),
    ("atras*", Cue::Resched),
    ("adiar", Cue::Resched),
    ("mudar", Cue::Resched),
    ("trocar", Cue::Resched),
    ("alterar", Cue::Resched),
    ("decaler", Cue::Resched),
    ("deplacer", Cue::Resched),
    ("reporter", Cue::Resched),
    ("bump", Cue::Resched),
    ("bring it forward", Cue::Resched),
    ("otra cita", Cue::Resched),
    ("nueva cita", Cue::Resched),
    ("outra data", Cue::Resched),
    ("outro horario", Cue::Resched),
    ("autre date", Cue::Resched),
    ("autre heure", Cue::Resched),
    ("rebook*", Cue::Resched),
    ("move", Cue::Resched),
    ("mover", Cue::Resched),
    ("mueve", Cue::Resched),
    ("chang*", Cue::Resched),
    ("cambi*", Cue::Resched),
    ("switch", Cue::Resched),
    ("shift", Cue::Resched),
    ("push", Cue::Resched),
    ("instead", Cue::Resched),
    ("what else", Cue::Resched),
    ("what other", Cue::Resched),
    ("other options", Cue::Resched),
    ("another day", Cue::Resched),
    ("another time", Cue::Resched),
    ("another date", Cue::Resched),
    ("another slot", Cue::Resched),
    ("another appointment", Cue::Resched),
    ("another appt", Cue::Resched),
    ("different appointment", Cue::Resched),
    ("different appt", Cue::Resched),
    ("different slot", Cue::Resched),
    ("new appointment", Cue::Resched),
    ("new appt", Cue::Resched),
    ("different day", Cue::Resched),
    ("different time", Cue::Resched),
    ("different date", Cue::Resched),
    ("other day", Cue::Resched),
    ("other days", Cue::Resched),
    ("other time", Cue::Resched),
    ("other times", Cue::Resched),
    ("other date", Cue::Resched),
    ("new time", Cue::Resched),
    ("new date", Cue::Resched),
    ("new day", Cue::Resched),
    ("otro dia", Cue::Resched),
    ("otra hora", Cue::Resched),
    ("otro horario", Cue::Resched),
    ("otra fecha", Cue::Resched),
    ("otro momento", Cue::Resched),
    ("outro dia", Cue::Resched),
    ("autre jour", Cue::Resched),
    // --- soft rescheduling ---
    ("later", Cue::FlexTime),
    ("earlier", Cue::FlexTime),
    ("sooner", Cue::FlexTime),
    ("another", Cue::FlexTime),
    ("otra", Cue::FlexTime),
    ("otro", Cue::FlexTime),
    ("outra", Cue::FlexTime),
    ("outro", Cue::FlexTime),
    ("autre", Cue::FlexTime),
    ("mais tarde", Cue::FlexTime),
    ("mas tarde", Cue::FlexTime),
    ("mas temprano", Cue::FlexTime),
    ("plus tard", Cue::FlexTime),
    ("available", Cue::FlexSlot),
    ("availability", Cue::FlexSlot),
    ("opening*", Cue::FlexSlot),
    ("open", Cue::FlexSlot),
    ("slot*", Cue::FlexSlot),
    ("book", Cue::FlexSlot),
    ("prefer*", Cue::FlexSlot),
    ("free", Cue::FlexSlot),
    ("anything", Cue::FlexSlot),
    ("dar cita", Cue::FlexSlot),
    // --- days and times ---
    ("monday", Cue::When),
    ("tuesday", Cue::When),
    ("wednesday", Cue::When),
    ("thursday", Cue::When),
    ("friday", Cue::When),
    ("saturday", Cue::When),
    ("sunday", Cue::When),
    ("mon", Cue::When),
    ("tue", Cue::When),
    ("tues", Cue::When),
    ("wed", Cue::When),
    ("thu", Cue::When),
    ("thur", Cue::When),
    ("thurs", Cue::When),
    ("fri", Cue::When),
    ("sat", Cue::When),
    ("tomorrow", Cue::When),
    ("tmrw", Cue::When),
    ("tmr", Cue::When),
    ("tmrow", Cue::When),
    ("today", Cue::When),
    ("tonight", Cue::When),
    ("morning", Cue::When),
    ("afternoon", Cue::When),
    ("evening", Cue::When),
    ("noon", Cue::When),
    ("weekend", Cue::When),
    ("week", Cue::When),
    ("month", Cue::When),
    ("hour", Cue::When),
    ("am", Cue::When),
    ("pm", Cue::When),
    ("january", Cue::When),
    ("february", Cue::When),
    ("april", Cue::When),
    ("june", Cue::When),
    ("july", Cue::When),
    ("august", Cue::When),
    ("september", Cue::When),
    ("october", Cue::When),
    ("november", Cue::When),
    ("december", Cue::When),
    ("lunes", Cue::When),
    ("martes", Cue::When),
    ("miercoles", Cue::When),
    ("jueves", Cue::When),
    ("viernes", Cue::When),
    ("sabado", Cue::When),
    ("domingo", Cue::When),
    ("manana", Cue::When),
    ("tarde", Cue::When),
    ("semana", Cue::When),
    ("hora", Cue::When),
    ("lundi", Cue::When),
    ("mardi", Cue::When),
    ("mercredi", Cue::When),
    ("jeudi", Cue::When),
    ("vendredi", Cue::When),
    ("samedi", Cue::When),
    ("heure", Cue::When),
    ("semaine", Cue::When),
    // --- requests ---
    ("can we", Cue::Request),
    ("could we", Cue::Request),
    ("can i", Cue::Request),
    ("could i", Cue::Request),
    ("can you", Cue::Request),
    ("could you", Cue::Request),
    ("would", Cue::Request),
    ("possible", Cue::Request),
    ("any chance", Cue::Request),
    ("any way", Cue::Request),
    ("do you have", Cue::Request),
    ("how about", Cue::Request),
    ("what about", Cue::Request),
    ("is there", Cue::Request),
    ("are there", Cue::Request),
    ("podemos", Cue::Request),
    ("podriamos", Cue::Request),
    ("se puede", Cue::Request),
    ("pueden", Cue::Request),
    ("tienen", Cue::Request),
    ("posso", Cue::Request),
    ("peut", Cue::Request),
    ("pouvons", Cue::Request),
    // --- hedges ---
    ("i think", Cue::Hedge),
    ("think so", Cue::Hedge),
    ("unsure", Cue::Hedge),
    ("let you know", Cue::Hedge),
    ("let u know", Cue::Hedge),
    ("get back to you", Cue::Hedge),
    ("check", Cue::Hedge),
    ("depends", Cue::Hedge),
    ("idk", Cue::Hedge),
    ("dunno", Cue::Hedge),
    ("hopefully", Cue::Hedge),
    ("try", Cue::Hedge),
    ("i guess", Cue::Hedge),
    ("tal vez", Cue::Hedge),
    ("talvez", Cue::Hedge),
    ("quizas", Cue::Hedge),
    ("quiza", Cue::Hedge),
    ("creo que", Cue::Hedge),
    ("a lo mejor", Cue::Hedge),
    ("emjq", Cue::Hedge),
    ("maybe", Cue::SoftHedge),
    ("might", Cue::SoftHedge),
    ("probably", Cue::SoftHedge),
    ("possibly", Cue::SoftHedge),
    ("perhaps", Cue::SoftHedge),
    ("late", Cue::Late),
    // --- other questions ---
    ("where", Cue::Info),
    ("address", Cue::Info),
    ("who", Cue::Info),
    ("which", Cue::Info),
    ("what time", Cue::Info),
    ("what day", Cue::Info),
    ("how much", Cue::Info),
    ("cost", Cue::Info),
    ("price", Cue::Info),
    ("what is this", Cue::Info),
    ("whats this", Cue::Info),
    ("is this", Cue::Info),
    ("what appointment", Cue::Info),
    ("wrong number", Cue::Info),
    ("call me", Cue::Info),
    ("insurance", Cue::Info),
    ("do i need", Cue::Info),
    ("location", Cue::Info),
    ("directions", Cue::Info),
    ("park", Cue::Info),
    ("parking", Cue::Info),
    ("estacion*", Cue::Info),
    ("parqueo", Cue::Info),
    ("endereco", Cue::Info),
    ("adresse", Cue::Info),
    ("confused", Cue::Info),
    ("donde", Cue::Info),
    ("direccion", Cue::Info),
    ("quien", Cue::Info),
    ("cuanto", Cue::Info),
    ("cuesta", Cue::Info),
    ("que hora", Cue::Info),
    ("a que hora", Cue::Info),
    ("still", Cue::Still),
    // --- stop messaging (not a keyword: only the whole message is) ---
    ("stop*", Cue::Stop),
    ("unsubscribe", Cue::Stop),
    ("emjstop", Cue::Stop),
    // --- rebooking left to the customer ---
    ("ill call", Cue::Deferred),
    ("i will call", Cue::Deferred),
    ("call you", Cue::Deferred),
    ("call back", Cue::Deferred),
    ("when im ready", Cue::Deferred),
    ("te llamo", Cue::Deferred),
    ("llamare", Cue::Deferred),
];

/// Key words matched at edit distance 1 (2 from 8 letters on) when a word matches
/// nothing in the lexicon; the first letter must agree.
const FUZZY: &[(&str, Cue)] = &[
    ("confirm", Cue::Confirm),
    ("confirmed", Cue::Confirm),
    ("confirming", Cue::Confirm),
    ("cancel", Cue::Cancel),
    ("cancelled", Cue::Cancel),
    ("reschedule", Cue::Resched),
    ("postpone", Cue::Resched),
    ("definitely", Cue::Yes),
    ("absolutely", Cue::Yes),
    ("perfect", Cue::Ack),
    ("attending", Cue::Attend),
    ("tomorrow", Cue::When),
    ("thanks", Cue::Polite),
];

// Score weights (logits). One clear cue against the unclear prior gives ≈ 0.9.
const W_YES: f64 = 5.0;
const W_CONFIRM: f64 = 5.0;
const W_ACK: f64 = 4.5;
const W_ATTEND: f64 = 3.5;
const W_POLITE: f64 = 1.5;
const W_CANCEL: f64 = 6.0;
const W_NEG_ATTEND: f64 = 5.0;
const W_NO: f64 = 4.5;
const W_RESCHED: f64 = 6.0;
const W_RESCHED_SOFT: f64 = 4.0;
const W_RESCHED_EXTRA: f64 = 0.5;
const W_UNCLEAR_PRIOR: f64 = 1.0;
const W_HEDGE: f64 = 3.5;
const W_INFO: f64 = 3.0;
const W_STOP: f64 = 6.0;
const W_BARE_QUESTION: f64 = 1.5;
const SCORE_CAP: f64 = 9.0;
/// An intent's score from what follows "but" that settles the reply on its own.
const DECISIVE: f64 = 3.5;
/// Contrast words: what follows the last one is what the customer settles on.
const CONTRAST: &[&str] = &["but", "pero", "however", "mais", "porem"];
/// The floor of a trained model's log posterior: it can never veto an intent alone.
const MODEL_LOG_FLOOR: f64 = -6.0;
/// How far (in words) a negator reaches forward, and a soft hedge looks for "late".
const NEGATION_REACH: usize = 5;
const LATE_REACH: usize = 6;

/// A word of a lexicon phrase.
#[derive(Debug, Clone)]
enum Word {
    Exact(String),
    Prefix(String),
}

impl Word {
    fn matches(&self, token: &str) -> bool {
        match self {
            Word::Exact(w) => w == token,
            Word::Prefix(p) => token.starts_with(p.as_str()),
        }
    }
}

#[derive(Debug, Clone)]
struct Pattern {
    words: Vec<Word>,
    cue: Cue,
}

/// A matched cue, covering tokens `pos..end`.
#[derive(Debug, Clone, Copy)]
struct Hit {
    cue: Cue,
    pos: usize,
    end: usize,
    clause: u32,
}

/// The local, in-process intent classifier. Construction compiles the lexicon; each
/// classification is a pure function of the text.
#[derive(Debug, Clone)]
pub struct LocalClassifier {
    patterns: Vec<Pattern>,
    /// Patterns by their (exact) first word, longest first.
    by_first: HashMap<String, Vec<usize>>,
    /// Patterns whose first word is a prefix, longest first.
    prefix_first: Vec<usize>,
    fuzzy: Vec<(Vec<char>, Cue)>,
    /// The trained model whose log posteriors are added to the rules' logits.
    model: Option<Arc<NaiveBayes>>,
    model_weight: f64,
    model_temperature: f64,
}

impl Default for LocalClassifier {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalClassifier {
    /// The lexicon rules alone: the default. The trained model of [`super::model`]
    /// can be added with [`LocalClassifier::with_model`]; measured by cross-validation
    /// (`actors/tests/classifier.rs`), it does not yet improve on the rules.
    pub fn new() -> Self {
        Self::with_model(None, 0.0, 1.0)
    }

    /// The rules combined with `model` (none: the rules alone), whose log posterior
    /// probabilities, at `temperature`, are added to the rules' logits times `weight`.
    /// For evaluation, e.g. cross-validation with a model trained on part of the data.
    pub fn with_model(model: Option<Arc<NaiveBayes>>, weight: f64, temperature: f64) -> Self {
        let mut patterns = Vec::with_capacity(LEXICON.len());
        for (phrase, cue) in LEXICON {
            let words: Vec<Word> = phrase
                .split_whitespace()
                .map(|raw| match raw.strip_suffix('*') {
                    Some(stem) => Word::Prefix(normalize_word(stem)),
                    None => Word::Exact(normalize_word(raw)),
                })
                .collect();
            if !words.is_empty() {
                patterns.push(Pattern { words, cue: *cue });
            }
        }
        let mut by_first: HashMap<String, Vec<usize>> = HashMap::new();
        let mut prefix_first = Vec::new();
        for (i, pattern) in patterns.iter().enumerate() {
            match &pattern.words[0] {
                Word::Exact(w) => by_first.entry(w.clone()).or_default().push(i),
                Word::Prefix(_) => prefix_first.push(i),
            }
        }
        // Longest first; the sort is stable, so equal lengths keep the lexicon's order.
        for list in by_first.values_mut() {
            list.sort_by_key(|&i| std::cmp::Reverse(patterns[i].words.len()));
        }
        prefix_first.sort_by_key(|&i| std::cmp::Reverse(patterns[i].words.len()));
        let fuzzy = FUZZY
            .iter()
            .map(|(w, cue)| (normalize_word(w).chars().collect(), *cue))
            .collect();
        LocalClassifier {
            patterns,
            by_first,
            prefix_first,
            fuzzy,
            model,
            model_weight: weight,
            model_temperature: temperature,
        }
    }

    /// Classifies one reply. Never panics; the confidence is always in [0, 1] and an
    /// actionable intent is only reported at or above [`CONFIDENCE_FLOOR`].
    pub fn classify_text(&self, text: &str) -> Classification {
        let normalized = normalize(text);
        let hits = self.match_cues(&normalized.tokens);
        let mut scores = score(&hits, &normalized);
        if let Some(model) = &self.model {
            let log_posterior = model.log_posterior(&normalized, self.model_temperature);
            scores.add_model(&log_posterior, self.model_weight);
        }
        decide(scores)
    }

    /// Matches the lexicon over the tokens, longest phrase first at each position.
    fn match_cues(&self, tokens: &[Token]) -> Vec<Hit> {
        let mut hits = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            let token = &tokens[i];
            let exact = self.by_first.get(&token.text).map(Vec::as_slice);
            let mut best: Option<(usize, Cue)> = None;
            for &p in exact.unwrap_or(&[]).iter().chain(self.prefix_first.iter()) {
                let pattern = &self.patterns[p];
                let n = pattern.words.len();
                if best.is_some_and(|(len, _)| len >= n) || i + n > tokens.len() {
                    continue;
                }
                let fits = pattern
                    .words
                    .iter()
                    .zip(&tokens[i..i + n])
                    .all(|(w, t)| t.clause == token.clause && w.matches(&t.text));
                if fits {
                    best = Some((n, pattern.cue));
                }
            }
            let best = best.or_else(|| self.fuzzy_cue(&token.text).map(|cue| (1, cue)));
            match best {
                Some((n, cue)) => {
                    hits.push(Hit {
                        cue,
                        pos: i,
                        end: i + n,
                        clause: token.clause,
                    });
                    i += n;
                }
                None => i += 1,
            }
        }
        hits
    }

    /// A key word within a small edit distance of `word`, for typos.
    fn fuzzy_cue(&self, word: &str) -> Option<Cue> {
        let chars: Vec<char> = word.chars().collect();
        if chars.len() < 4 || chars.len() > 14 || !chars[0].is_alphabetic() {
            return None;
        }
        self.fuzzy.iter().find_map(|(target, cue)| {
            let limit = if target.len() >= 8 { 2 } else { 1 };
            (target[0] == chars[0]
                && target.len().abs_diff(chars.len()) <= limit
                && edit_distance(&chars, target) <= limit)
                .then_some(*cue)
        })
    }
}

impl Classifier for LocalClassifier {
    fn classify(&self, text: String) -> BoxFuture<'static, Result<Classification, ProviderError>> {
        let classification = self.classify_text(&text);
        Box::pin(std::future::ready(Ok(classification)))
    }
}

/// Per-intent scores (logits).
#[derive(Debug, Clone, Copy)]
struct Scores {
    confirm: f64,
    reschedule: f64,
    cancel: f64,
    unclear: f64,
}

/// What the cues of one reply add up to.
#[derive(Debug, Default)]
struct Evidence {
    yes: bool,
    confirm: bool,
    ack: bool,
    polite: bool,
    attend: bool,
    neg_attend: bool,
    no: bool,
    cancel: bool,
    resched: bool,
    /// A negated cancel or reschedule cue: "no need to cancel", "don't reschedule".
    neg_change: bool,
    /// Coming, said in a clause that is not a question ("I'll be there. Parking?").
    attend_statement: bool,
    flex_time: usize,
    flex_slot: usize,
    when: usize,
    request: bool,
    hedge: bool,
    info: bool,
    still: bool,
    stop: bool,
    deferred: bool,
}

fn score(hits: &[Hit], normalized: &Normalized) -> Scores {
    let whole = evidence(hits, normalized, 0).into_scores(normalized.question);
    // "X but Y": what follows the last contrast word is what the customer settles on
    // ("I was going to cancel but I'll come after all", "yes but can we move it"),
    // when it is decisive on its own; otherwise ("yes but I might be late") the whole.
    let contrast = normalized
        .tokens
        .iter()
        .rposition(|t| CONTRAST.contains(&t.text.as_str()));
    if let Some(at) = contrast {
        let after: Vec<Hit> = hits.iter().copied().filter(|h| h.pos > at).collect();
        let tail = evidence(&after, normalized, at + 1).into_scores(normalized.question);
        if tail.confirm.max(tail.reschedule).max(tail.cancel) >= DECISIVE {
            return tail;
        }
    }
    whole
}

/// The evidence of `hits`, all at or after token `from`.
fn evidence(hits: &[Hit], normalized: &Normalized, from: usize) -> Evidence {
    let mut e = Evidence {
        request: normalized.question,
        ..Evidence::default()
    };
    let last_token = normalized.tokens.len();
    let negates = |h: &Hit, hit: &Hit| {
        matches!(h.cue, Cue::Negator | Cue::No | Cue::NotNeeded)
            && h.clause == hit.clause
            && hit.pos >= h.end
            && hit.pos - h.end <= NEGATION_REACH
    };
    for (k, hit) in hits.iter().enumerate() {
        let negated = || hits[..k].iter().any(|h| negates(h, hit));
        // Whether this cue is negating a cancel or reschedule cue after it ("no need to
        // cancel", "don't want to reschedule"): then it is no answer of its own.
        let negates_change = || {
            hits[k + 1..]
                .iter()
                .any(|h| matches!(h.cue, Cue::Cancel | Cue::Resched) && negates(hit, h))
        };
        match hit.cue {
            Cue::Yes => e.yes = true,
            Cue::No if negates_change() => {}
            Cue::No => e.no = true,
            Cue::Confirm if negated() => e.neg_attend = true,
            Cue::Confirm => e.confirm = true,
            Cue::Ack if negated() => e.neg_attend = true,
            Cue::Ack => e.ack = true,
            Cue::Attend if negated() => e.neg_attend = true,
            Cue::Attend => {
                e.attend = true;
                if !normalized.is_question_clause(hit.clause) {
                    e.attend_statement = true;
                }
            }
            Cue::Polite => e.polite = true,
            Cue::Negator => {
                // A negator ending its clause ("sorry, can't") refuses on its own.
                let clause_ends =
                    hit.end == last_token || normalized.tokens[hit.end].clause != hit.clause;
                if clause_ends {
                    e.neg_attend = true;
                }
            }
            // "don't need it", "don't want the appointment" — unless it negates what
            // follows: "don't need to come" (refusal), "don't want to cancel" (not one).
            Cue::NotNeeded => {
                let negates_any = hits[k + 1..].iter().any(|h| {
                    matches!(
                        h.cue,
                        Cue::Cancel | Cue::Resched | Cue::Attend | Cue::Confirm
                    ) && negates(hit, h)
                });
                if !negates_any {
                    e.cancel = true;
                }
            }
            Cue::Cancel if negated() => e.neg_change = true,
            Cue::Cancel => e.cancel = true,
            Cue::Resched if negated() => e.neg_change = true,
            Cue::Resched => e.resched = true,
            Cue::FlexTime => e.flex_time += 1,
            Cue::FlexSlot => e.flex_slot += 1,
            Cue::When => e.when += 1,
            Cue::Request => e.request = true,
            Cue::Hedge => e.hedge = true,
            Cue::SoftHedge => {
                // "might be 10 minutes late" is about lateness; "maybe next week?"
                // proposes a time. Neither is a hedge about coming.
                let qualified = hits[k + 1..].iter().any(|h| {
                    h.clause == hit.clause
                        && ((h.cue == Cue::Late && h.pos - hit.end < LATE_REACH)
                            || (h.cue == Cue::When && h.pos - hit.end <= 1))
                });
                if !qualified {
                    e.hedge = true;
                }
            }
            Cue::Info => e.info = true,
            Cue::Still => e.still = true,
            Cue::Late | Cue::Greeting => {}
            Cue::Stop => e.stop = true,
            Cue::Deferred => e.deferred = true,
        }
    }
    // Tokens that are clock times or dates ("3pm", "10", "15th") name a time.
    e.when += normalized.tokens[from.min(last_token)..]
        .iter()
        .filter(|t| t.text.starts_with(|c: char| c.is_ascii_digit()))
        .count();
    e
}

impl Evidence {
    fn into_scores(self, question: bool) -> Scores {
        let e = self;
        let affirmative = e.yes || e.confirm || e.ack || e.attend_statement;
        let mut confirm = 0.0;
        if e.yes {
            confirm += W_YES;
        }
        if e.confirm {
            confirm += W_CONFIRM;
        }
        if e.ack {
            confirm += W_ACK;
        }
        // "Can my husband come with me?" asks; "I'm coming" answers.
        if e.attend && affirmative {
            confirm += W_ATTEND;
        }
        if e.polite {
            confirm += W_POLITE;
        }

        let mut cancel = 0.0;
        if e.cancel {
            cancel += W_CANCEL;
        }
        if e.neg_attend {
            cancel += W_NEG_ATTEND;
        }
        if e.no {
            cancel += W_NO;
        }

        // A new time is asked for: explicitly, or with a soft cue inside a request.
        let checking_time = e.still && question;
        let soft = (e.flex_time > 0 && e.request)
            || (e.flex_slot > 0 && e.when > 0)
            || (e.when > 0 && e.request && !checking_time);
        let rebooking_later = e.deferred || e.neg_change;
        let mut reschedule = 0.0;
        if !rebooking_later {
            if e.resched {
                reschedule += W_RESCHED;
            }
            if soft {
                let extra = (e.flex_time + e.flex_slot + e.when)
                    .saturating_sub(1)
                    .min(3);
                reschedule += W_RESCHED_SOFT + W_RESCHED_EXTRA * extra as f64;
            }
        }

        let mut unclear = W_UNCLEAR_PRIOR;
        if e.hedge {
            unclear += W_HEDGE;
        }
        if e.info {
            unclear += if affirmative { W_INFO / 2.0 } else { W_INFO };
        }
        if e.stop {
            unclear += W_STOP;
        }
        let decided = affirmative || cancel > 0.0 || reschedule > 0.0;
        if question && !decided {
            unclear += W_BARE_QUESTION;
        }

        // Precedence between mixed intents.
        if reschedule > 0.0 {
            // "yes but can we move it", "can't make it, can we do Friday".
            confirm *= 0.2;
            cancel *= 0.3;
        } else if cancel > 0.0 {
            // "yes cancel it", "no thanks".
            confirm *= 0.25;
        }
        if e.hedge {
            confirm *= 0.3;
        }
        if e.stop {
            confirm = 0.0;
        }
        Scores {
            confirm: confirm.min(SCORE_CAP),
            reschedule: reschedule.min(SCORE_CAP),
            cancel: cancel.min(SCORE_CAP),
            unclear: unclear.min(SCORE_CAP),
        }
    }
}

impl Scores {
    /// Adds the model's log posteriors (floored at [`MODEL_LOG_FLOOR`]) times `weight`.
    fn add_model(&mut self, log_posterior: &[f64; 4], weight: f64) {
        let term = |intent: Intent| weight * log_posterior[index(intent)].max(MODEL_LOG_FLOOR);
        self.confirm += term(Intent::Confirm);
        self.reschedule += term(Intent::Reschedule);
        self.cancel += term(Intent::Cancel);
        self.unclear += term(Intent::Unclear);
    }
}

/// Softmax over the scores, then the confidence floor.
fn decide(scores: Scores) -> Classification {
    let exp = |s: f64| s.exp();
    let (c, r, x, u) = (
        exp(scores.confirm),
        exp(scores.reschedule),
        exp(scores.cancel),
        exp(scores.unclear),
    );
    let total = c + r + x + u;
    let mut best = (Intent::Confirm, c / total);
    for (intent, p) in [(Intent::Reschedule, r / total), (Intent::Cancel, x / total)] {
        if p > best.1 {
            best = (intent, p);
        }
    }
    let unclear = u / total;
    let (intent, confidence) = if best.1 >= CONFIDENCE_FLOOR {
        best
    } else if unclear >= best.1 {
        // The model's own answer: as sure as its unclear evidence (a hedge, a question
        // about something else) makes it; with no evidence at all, below one half.
        (Intent::Unclear, unclear)
    } else {
        // An actionable intent led, but below the floor.
        (Intent::Unclear, 1.0 - best.1)
    };
    let confidence = if confidence.is_finite() {
        confidence.clamp(0.0, 1.0)
    } else {
        0.0
    };
    Classification {
        intent,
        confidence,
        source: SOURCE.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(text: &str) -> Intent {
        LocalClassifier::new().classify_text(text).intent
    }

    #[test]
    fn classify_spec_examples() {
        let cases = [
            ("yes", Intent::Confirm),
            ("Confrim", Intent::Confirm),
            ("👍", Intent::Confirm),
            ("allí estaré", Intent::Confirm),
            ("yes but can we move it to 3pm?", Intent::Reschedule),
            ("no I can't make it, can we do Friday", Intent::Reschedule),
            ("yes cancel it", Intent::Cancel),
            ("cancle", Intent::Cancel),
            ("I won't be able to come", Intent::Cancel),
            ("not confirmed", Intent::Cancel),
            ("no puedo ir", Intent::Cancel),
            ("reschedual", Intent::Reschedule),
            ("cambiar la cita", Intent::Reschedule),
            ("I think so", Intent::Unclear),
            ("where is the office?", Intent::Unclear),
            ("what time is it again?", Intent::Unclear),
            ("stop texting me", Intent::Unclear),
            // Negation scope: a negated cancel or reschedule is no request for one.
            ("no need to cancel, I'll be there", Intent::Confirm),
            ("please don't cancel it, we're coming", Intent::Confirm),
            ("no need to reschedule, see you then", Intent::Confirm),
            ("I don't need the appointment anymore", Intent::Cancel),
            ("I don't need to come in", Intent::Cancel),
            // Contrast: what follows "but" settles the reply when it is decisive.
            (
                "I wanted to cancel but I'll come after all",
                Intent::Confirm,
            ),
            ("I'd love to come but I can't make it", Intent::Cancel),
            ("yes but I might be 10 minutes late", Intent::Confirm),
            // An answer in one clause, a question in another: the answer counts.
            ("I'll be there. Is there parking?", Intent::Confirm),
            ("can my husband come with me?", Intent::Unclear),
            // A hedge right before a time proposes that time.
            ("not Friday, maybe Monday?", Intent::Reschedule),
            ("maybe, depends on work", Intent::Unclear),
            ("is there another time?", Intent::Reschedule),
        ];
        for (text, expected) in cases {
            assert_eq!(intent(text), expected, "{text:?}");
        }
    }

    #[test]
    fn classify_confidence_floor_and_source() {
        let classifier = LocalClassifier::default();
        for text in ["", "maybe", "thank you", "yes", "🤔", "ok?"] {
            let c = classifier.classify_text(text);
            assert!((0.0..=1.0).contains(&c.confidence), "{text:?}: {c:?}");
            assert!(c.intent == Intent::Unclear || c.confidence >= CONFIDENCE_FLOOR);
            assert_eq!(c.source, SOURCE);
        }
    }
}
