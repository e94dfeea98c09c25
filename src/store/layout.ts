/**
 * Every sublevel of the node's LevelDB in one table: name, owner, key -> value.
 * Names follow `key_value`; compound keys are joined with `!`.
 */
export const SUBLEVELS = {
  /** users/: normalised login -> UserRecord */
  login_user: { owner: 'users', key: 'login', value: 'UserRecord (json)' },
  /** registrar/: AOR (normalised login) -> Binding[] (json); one key per AOR so a REGISTER is one atomic write */
  aor_contacts: { owner: 'registrar', key: 'aor', value: 'Binding[] (json)' },
  /** routing/: `<startedAt, 13 digits>!<call id>` -> CallRecord (json): one per call attempt, time-ordered */
  time_cdr: { owner: 'routing', key: 'startedAt!callId', value: 'CallRecord (json)' },
  /** directory/: `<kind>!<name>` (kind node | login | did) -> NamePin (json): owner key of a name, pinned on first resolution */
  name_pin: { owner: 'directory', key: 'kind!name', value: 'NamePin (json)' },
  /** messaging/: message id (ULID-like, time-sortable) -> MessageRecord (json): pending messages and recent history */
  msgid_message: { owner: 'messaging', key: 'id', value: 'MessageRecord (json)' },
  /** messaging/: destination node name -> NodeQueueState (json): outbox failures and persisted next attempt */
  node_outbox: { owner: 'messaging', key: 'node', value: 'NodeQueueState (json)' },
  /** messaging/: `<recipient peer id>!<message id>` -> MailboxEntry (json): messages held for other nodes */
  peer_mailbox: { owner: 'messaging', key: 'peer!id', value: 'MailboxEntry (json)' },
  /** users/: `<login>!<trunk name>` -> TrunkRecord (json): PBX trunks and lines, HA1s of `<login>_<name>` only */
  trunk_entry: { owner: 'users', key: 'login!name', value: 'TrunkRecord (json)' },
  /** users/: login -> PbxSettings (json): inbound mode (main | extensions), distribution, aliases */
  login_pbx: { owner: 'users', key: 'login', value: 'PbxSettings (json)' },
  /** users/: E.164 number (`+15551234567`) -> DidRoute (json): the login (and extension) a DID reaches */
  did_target: { owner: 'users', key: 'e164', value: 'DidRoute (json)' },
  /** node.ts: setting name -> value (json): nonce secret, node name */
  setting_value: { owner: 'node', key: 'setting', value: 'json' }
} as const

export type SublevelName = keyof typeof SUBLEVELS
