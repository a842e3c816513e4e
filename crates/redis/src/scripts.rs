//! The Lua scripts behind every store call. Each runs atomically on the
//! keys of one topic (one hash tag, so one cluster slot), which is what
//! makes offsets gap-free and consumer advances exclusive across nodes.
//! Each is the shared prelude (`lua/prelude.lua`: key and argument layout,
//! the topic, retention, the append) and the rest of the shared functions
//! (`lua/shared.lua`: reads, positions, consumers, exactly-once
//! publishing) followed by its own body; the plain publish, the hot path,
//! carries only the prelude (Redis runs every definition on every call).
//! They are sent with EVALSHA and loaded on first use.

use std::sync::LazyLock;

use redis::Script;

const PRELUDE: &str = include_str!("lua/prelude.lua");
const SHARED: &str = include_str!("lua/shared.lua");

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{SHARED}\n{body}"))
}

/// A script that needs only the prelude.
fn lean(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

/// Every script, compiled into the binary.
pub(super) struct Scripts {
    pub(super) create_topic: Script,
    pub(super) get_topic: Script,
    pub(super) update_topic: Script,
    pub(super) delete_topic: Script,
    pub(super) publish: Script,
    pub(super) publish_with: Script,
    pub(super) enforce_retention: Script,
    pub(super) resolve: Script,
    pub(super) read: Script,
    pub(super) fetch: Script,
    pub(super) create_consumer: Script,
    pub(super) get_consumer: Script,
    pub(super) list_consumers: Script,
    pub(super) delete_consumer: Script,
    pub(super) commit: Script,
    pub(super) seek: Script,
    pub(super) settle: Script,
    pub(super) update_consumer: Script,
    pub(super) dl_append: Script,
    pub(super) dl_finish: Script,
}

pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    create_topic: script(include_str!("lua/create_topic.lua")),
    get_topic: script(include_str!("lua/get_topic.lua")),
    update_topic: script(include_str!("lua/update_topic.lua")),
    delete_topic: script(include_str!("lua/delete_topic.lua")),
    publish: lean(include_str!("lua/publish.lua")),
    publish_with: script(include_str!("lua/publish_with.lua")),
    enforce_retention: script(include_str!("lua/enforce_retention.lua")),
    resolve: script(include_str!("lua/resolve.lua")),
    read: script(include_str!("lua/read.lua")),
    fetch: script(include_str!("lua/fetch.lua")),
    create_consumer: script(include_str!("lua/create_consumer.lua")),
    get_consumer: script(include_str!("lua/get_consumer.lua")),
    list_consumers: script(include_str!("lua/list_consumers.lua")),
    delete_consumer: script(include_str!("lua/delete_consumer.lua")),
    commit: script(include_str!("lua/commit.lua")),
    seek: script(include_str!("lua/seek.lua")),
    settle: script(include_str!("lua/settle.lua")),
    update_consumer: script(include_str!("lua/update_consumer.lua")),
    dl_append: script(include_str!("lua/dl_append.lua")),
    dl_finish: script(include_str!("lua/dl_finish.lua")),
});
