//! Campaign blocks: the campaign and what a contact did with it (link, forward, share, reply,
//! bounce, unsubscribe, the subscription form).

use super::block::block;

block! {
    /// The campaign: `campaign[...]`, with its message (`campaign[message][id]`,
    /// `campaign[message][subject]`).
    pub struct Campaign {
        /// The campaign id.
        id, with_id, set_id => "campaign[id]";
        /// The campaign name.
        name, with_name, set_name => "campaign[name]";
        /// The campaign status code.
        status, with_status, set_status => "campaign[status]";
        /// The campaign type (`single`, `recurring`, ...).
        kind, with_kind, set_kind => "campaign[type]";
        /// How many recipients it has.
        recipients, with_recipients, set_recipients => "campaign[recipients]";
        /// The message id.
        message_id, with_message_id, set_message_id => "campaign[message][id]";
        /// The message subject.
        message_subject, with_message_subject, set_message_subject => "campaign[message][subject]";
        /// The "view in browser" URL.
        webcopy_url, with_webcopy_url, set_webcopy_url => "campaign[webcopy_url]";
    }
}

block! {
    /// The link clicked (`click`).
    pub struct Link {
        /// The link id.
        id, with_id, set_id => "link[id]";
        /// The link URL.
        url, with_url, set_url => "link[url]";
    }
}

block! {
    /// The forward (`forward`).
    pub struct Forward {
        /// How many addresses it was forwarded to.
        count, with_count, set_count => "forward[count]";
    }
}

block! {
    /// The share on a social network (`share`).
    pub struct Share {
        /// The network (`facebook`, ...).
        network, with_network, set_network => "share[network]";
        /// The post id on that network.
        network_id, with_network_id, set_network_id => "share[network_id]";
        /// The text shared.
        content, with_content, set_content => "share[content]";
    }
}

block! {
    /// The reply to an email (`reply`): top-level `result` and `message`.
    pub struct Reply {
        /// The outcome of processing the reply.
        result, with_result, set_result => "result";
        /// The reply text.
        message, with_message, set_message => "message";
    }
}

block! {
    /// The bounce (`bounce`). The keys are *unverified* against a captured payload.
    pub struct Bounce {
        /// `hard` or `soft`.
        kind, with_kind, set_kind => "bounce[type]";
        /// The SMTP/DSN code, e.g. `5.1.1`.
        code, with_code, set_code => "bounce[code]";
        /// The receiving server's description.
        description, with_description, set_description => "bounce[description]";
    }
}

block! {
    /// Why the contact unsubscribed (`unsubscribe`).
    pub struct Unsubscribe {
        /// The reason the contact gave.
        reason, with_reason, set_reason => "unsubscribe[reason]";
    }
}

block! {
    /// The subscription form used (`subscribe`, `unsubscribe`): `form[id]`.
    pub struct SignupForm {
        /// The form id.
        id, with_id, set_id => "form[id]";
    }
}
