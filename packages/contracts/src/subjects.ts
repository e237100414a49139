/** Request-reply subjects of every service: `svc.<service>.<resource>.<verb>`. */
export const Rpc = {
  identity: {
    tenantCreate: "svc.identity.tenant.create",
    keyResolve: "svc.identity.key.resolve",
    workspaceCreate: "svc.identity.workspace.create",
    workspaceList: "svc.identity.workspace.list",
    workspaceGet: "svc.identity.workspace.get",
    workspaceDelete: "svc.identity.workspace.delete",
    keyIssue: "svc.identity.key.issue",
    keyList: "svc.identity.key.list",
    keyRevoke: "svc.identity.key.revoke",
    /** Internal: the mailbox asks for the ak_ key of an inbox it is creating. */
    keyIssueForInbox: "svc.identity.key.issue-for-inbox",
    tenantGet: "svc.identity.tenant.get",
  },
  mailbox: {
    inboxCreate: "svc.mailbox.inbox.create",
    inboxList: "svc.mailbox.inbox.list",
    inboxGet: "svc.mailbox.inbox.get",
    inboxUpdate: "svc.mailbox.inbox.update",
    inboxDelete: "svc.mailbox.inbox.delete",
    addressAdd: "svc.mailbox.address.add",
    addressRemove: "svc.mailbox.address.remove",
    listCreate: "svc.mailbox.list.create",
    listList: "svc.mailbox.list.list",
    listGet: "svc.mailbox.list.get",
    listUpdate: "svc.mailbox.list.update",
    listDelete: "svc.mailbox.list.delete",
    entryAdd: "svc.mailbox.list-entry.add",
    entryUpdate: "svc.mailbox.list-entry.update",
    entryRemove: "svc.mailbox.list-entry.remove",
    domainAdd: "svc.mailbox.domain.add",
    domainList: "svc.mailbox.domain.list",
    domainGet: "svc.mailbox.domain.get",
    domainRemove: "svc.mailbox.domain.remove",
    domainVerify: "svc.mailbox.domain.verify",
    messageSend: "svc.mailbox.message.send",
    messageReply: "svc.mailbox.message.reply",
    messageReplyAll: "svc.mailbox.message.reply-all",
    messageForward: "svc.mailbox.message.forward",
    messageList: "svc.mailbox.message.list",
    messageGet: "svc.mailbox.message.get",
    messagePatch: "svc.mailbox.message.patch",
    messageDelete: "svc.mailbox.message.delete",
    messageRaw: "svc.mailbox.message.raw",
    attachmentList: "svc.mailbox.attachment.list",
    attachmentGet: "svc.mailbox.attachment.get",
    threadGet: "svc.mailbox.thread.get",
    draftCreate: "svc.mailbox.draft.create",
    draftList: "svc.mailbox.draft.list",
    draftGet: "svc.mailbox.draft.get",
    draftUpdate: "svc.mailbox.draft.update",
    draftDelete: "svc.mailbox.draft.delete",
    draftSend: "svc.mailbox.draft.send",
    mailboxView: "svc.mailbox.view.messages",
    folderCounts: "svc.mailbox.view.folder-counts",
    platformDomainGet: "svc.mailbox.platform-domain.get",
    /** Internal, unscoped: smtp-ingress loads the address directory from here at start. */
    directoryPage: "svc.mailbox.directory.page",
    platformDomainVerify: "svc.mailbox.platform-domain.verify",
  },
} as const;

export const rpcSubject = (prefix: string, subject: string) => `${prefix}${subject}`;

/** Name of the JetStream stream holding every domain event under a subject prefix. */
export function eventsStreamName(prefix: string): string {
  const tag = prefix.replace(/[^A-Za-z0-9]/g, "").toUpperCase();
  return tag ? `${tag}_EVENTS` : "EVENTS";
}

/** Object-store bucket where replies too large for one NATS message wait for their caller. */
export const rpcReplyBucketName = (prefix: string) => `${prefix.replace(/[^A-Za-z0-9]/g, "") || "mam"}-rpc-replies`;
