//! Policy revisions of a service or policy: every change of the policy XML appends one;
//! one revision is active and is "the policy". Main type: [`Revisions`].

use serde::{Deserialize, Serialize};

/// The author every revision records (the twin has one administrator).
pub const AUTHOR: &str = "admin";

/// One saved version of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRevision {
    /// Its own goid.
    pub goid: String,
    /// 1, 2, ... in order of saving.
    pub ordinal: u64,
    /// The comment given when saved (`versionComment`).
    pub comment: Option<String>,
    /// Who saved it.
    pub author: String,
    /// When it was saved, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The policy XML, as given.
    pub xml: String,
}

/// How a save treats the policy it carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevisionOptions {
    /// Make a new revision active (`false`: the previous one keeps serving).
    pub activate: bool,
    /// The new revision's comment.
    pub comment: Option<String>,
}

impl RevisionOptions {
    /// Activate, no comment.
    pub fn active() -> Self {
        Self {
            activate: true,
            comment: None,
        }
    }
}

/// Every revision of one policy and which is active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revisions {
    /// Revisions in ordinal order (never empty).
    list: Vec<PolicyRevision>,
    /// The active revision's ordinal.
    active: u64,
}

impl Revisions {
    /// A history of one active revision holding `xml`.
    pub fn new(xml: impl Into<String>, comment: Option<String>) -> Self {
        Self {
            list: vec![revision(1, xml.into(), comment)],
            active: 1,
        }
    }

    /// The active revision's XML: the policy.
    pub fn active_xml(&self) -> &str {
        self.active().map_or("", |revision| revision.xml.as_str())
    }

    /// The active revision.
    pub fn active(&self) -> Option<&PolicyRevision> {
        self.get(self.active)
    }

    /// The active revision's ordinal.
    pub fn active_ordinal(&self) -> u64 {
        self.active
    }

    /// The revision numbered `ordinal`.
    pub fn get(&self, ordinal: u64) -> Option<&PolicyRevision> {
        self.list
            .iter()
            .find(|revision| revision.ordinal == ordinal)
    }

    /// Every revision, oldest first.
    pub fn all(&self) -> &[PolicyRevision] {
        &self.list
    }

    /// The newest revision's ordinal.
    pub fn latest_ordinal(&self) -> u64 {
        self.list.last().map_or(0, |revision| revision.ordinal)
    }

    /// This history after saving `xml`: unchanged when `xml` is the active policy, else a new
    /// revision, made active when `options.activate`.
    pub fn saved(&self, xml: &str, options: &RevisionOptions) -> Self {
        if xml == self.active_xml() {
            return self.clone();
        }
        let mut next = self.clone();
        let ordinal = self.latest_ordinal() + 1;
        next.list
            .push(revision(ordinal, xml.to_owned(), options.comment.clone()));
        if options.activate {
            next.active = ordinal;
        }
        next
    }

    /// Makes revision `ordinal` active; false when there is none.
    pub fn activate(&mut self, ordinal: u64) -> bool {
        if self.get(ordinal).is_none() {
            return false;
        }
        self.active = ordinal;
        true
    }

    /// Sets revision `ordinal`'s comment; false when there is none.
    pub fn set_comment(&mut self, ordinal: u64, comment: Option<String>) -> bool {
        match self
            .list
            .iter_mut()
            .find(|revision| revision.ordinal == ordinal)
        {
            Some(revision) => {
                revision.comment = comment;
                true
            }
            None => false,
        }
    }
}

/// A new revision saved now.
fn revision(ordinal: u64, xml: String, comment: Option<String>) -> PolicyRevision {
    PolicyRevision {
        goid: crate::layer7::store::new_goid(),
        ordinal,
        comment,
        author: AUTHOR.to_owned(),
        time_ms: jiff::Timestamp::now().as_millisecond(),
        xml,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_policy_appends_a_revision_and_an_unchanged_one_does_not() {
        let first = Revisions::new("<a/>", None);
        assert_eq!(first.saved("<a/>", &RevisionOptions::active()), first);
        let second = first.saved(
            "<b/>",
            &RevisionOptions {
                activate: true,
                comment: Some("fix".to_owned()),
            },
        );
        assert_eq!(second.active_ordinal(), 2);
        assert_eq!(second.active_xml(), "<b/>");
        assert_eq!(
            second.get(2).and_then(|r| r.comment.as_deref()),
            Some("fix")
        );
        assert_eq!(second.get(2).map(|r| r.author.as_str()), Some(AUTHOR));
    }

    #[test]
    fn an_inactive_save_keeps_the_previous_policy_until_activated() {
        let mut history = Revisions::new("<a/>", None).saved(
            "<b/>",
            &RevisionOptions {
                activate: false,
                comment: None,
            },
        );
        assert_eq!(history.active_xml(), "<a/>");
        assert_eq!(history.latest_ordinal(), 2);
        assert!(history.activate(2));
        assert_eq!(history.active_xml(), "<b/>");
        assert!(!history.activate(9));
        assert!(history.activate(1));
        assert_eq!(history.active_xml(), "<a/>");
    }
}
