//! "Did you mean" suggestions for misspelt names.

/// The closest candidate to `word`, phrased as a help line, if one is close enough.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// The candidate nearest to `word` by edit distance, if it is plausibly a typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, c)| *distance <= limit && *distance < c.chars().count())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_names_only() {
        assert_eq!(closest("neds", ["needs", "name", "when"]), Some("needs"));
        assert_eq!(
            closest("kong.targte", ["kong.target", "kong.entity"]),
            Some("kong.target")
        );
        assert_eq!(closest("zzzzzz", ["needs", "name"]), None);
    }
}
