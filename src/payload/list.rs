//! The list block of `list_add`, and the SMS block.

use super::block::block;

block! {
    /// The list added (`list_add`): `list[...]`.
    ///
    /// Not the common key `list` (the list the event happened on,
    /// [`Event::list`](crate::Event::list)): `list_add` carries both, and both are kept.
    pub struct ListInfo {
        /// The list id.
        id, with_id, set_id => "list[id]";
        /// The owner's user id.
        userid, with_userid, set_userid => "list[userid]";
        /// The list name.
        name, with_name, set_name => "list[name]";
        /// Sender address, first line.
        sender_addr1, with_sender_addr1, set_sender_addr1 => "list[sender_addr1]";
        /// Sender address, second line.
        sender_addr2, with_sender_addr2, set_sender_addr2 => "list[sender_addr2]";
        /// Sender city.
        sender_city, with_sender_city, set_sender_city => "list[sender_city]";
        /// Sender state or province.
        sender_state, with_sender_state, set_sender_state => "list[sender_state]";
        /// Sender postal code.
        sender_zip, with_sender_zip, set_sender_zip => "list[sender_zip]";
        /// Sender country.
        sender_country, with_sender_country, set_sender_country => "list[sender_country]";
        /// Sender website.
        sender_url, with_sender_url, set_sender_url => "list[sender_url]";
        /// The "why you get this email" reminder.
        sender_reminder, with_sender_reminder, set_sender_reminder => "list[sender_reminder]";
        /// The full sender address on one line.
        fulladdress, with_fulladdress, set_fulladdress => "list[fulladdress]";
    }
}

block! {
    /// The SMS (`sms_reply`, `sms_sent`, `sms_unsub`): `sms[...]`. The keys are *unverified*.
    pub struct Sms {
        /// The message id.
        id, with_id, set_id => "sms[id]";
        /// The recipient's number.
        recipient, with_recipient, set_recipient => "sms[recipient]";
        /// `1` when sent successfully.
        successful, with_successful, set_successful => "sms[successful]";
        /// A comment on the delivery.
        comment, with_comment, set_comment => "sms[comment]";
        /// The contact's reply.
        reply, with_reply, set_reply => "sms[reply]";
        /// The outcome of processing.
        result, with_result, set_result => "sms[result]";
        /// The sending number.
        phone, with_phone, set_phone => "sms[phone]";
    }
}
