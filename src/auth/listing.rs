//! Lists filtered to what a caller may see.

use super::{Action, Caller};
use crate::store::{Page, Result, Store, TopicInfo, TopicName};

/// A page of up to `size` topics after `after` that `caller` may list:
/// the store's pages, filtered, read until the page is full or the topics
/// run out. A caller whose grants cover every topic reads one store page.
pub async fn visible_topics(
    store: &dyn Store,
    caller: &Caller,
    after: Option<&TopicName>,
    size: usize,
) -> Result<Page<TopicInfo>> {
    if caller.may_everywhere(Action::ListTopics) {
        return store.list_topics(after, size).await;
    }
    let mut items = Vec::new();
    let mut after = after.cloned();
    loop {
        let page = store.list_topics(after.as_ref(), size).await?;
        after = page.items.last().map(|t| t.name.clone());
        let mut visible = page
            .items
            .into_iter()
            .filter(|t| caller.may(Action::ListTopics, t.name.as_str()));
        for topic in visible.by_ref() {
            items.push(topic);
            if items.len() == size {
                let more = visible.next().is_some() || page.more;
                return Ok(Page { items, more });
            }
        }
        if !page.more {
            return Ok(Page { items, more: false });
        }
    }
}
