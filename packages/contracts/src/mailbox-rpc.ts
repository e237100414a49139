import { z } from "zod";
import { AddDomainCommand, CreateDomainBody, Domain, DomainList, DomainRef, ListDomainsRequest } from "./domains-api.ts";
import {
  AddEntryBody,
  AddressList,
  CreateListBody,
  EntryPage,
  ListEntriesRequest,
  ListEntry,
  ListListsRequest,
  ListRef,
  ListsOfInbox,
  UpdateEntryBody,
  UpdateListBody,
} from "./lists-api.ts";
import {
  AddAddressBody,
  AddAddressCommand,
  AddressAdded,
  AddressRemoved,
  CreatedInbox,
  CreateInboxBody,
  DirectoryLookup,
  DirectoryLookupQuery,
  DirectoryPage,
  DirectoryPageQuery,
  Inbox,
  InboxList,
  InboxRef,
  ListInboxesQuery,
  RemoveAddressCommand,
  StrictFlag,
  UpdateInboxBody,
  UpdateInboxCommand,
} from "./mailbox-api.ts";
import {
  AttachmentList,
  Draft,
  DraftInput,
  DraftPage,
  DraftSent,
  FlagsBody,
  FolderCounts,
  FolderCountsQuery,
  ForwardBody,
  ListDraftsQuery,
  ListMessagesQuery,
  MailboxPage,
  MailboxViewQuery,
  Message,
  MessagePage,
  MessageRef,
  ReplyBody,
  SendBody,
  SendCommand,
  SendResult,
  Thread,
  ThreadRef,
} from "./messages-api.ts";
import { Deleted, NoParams, Updated } from "./results.ts";
import { FeedMessage, FeedThread } from "./realtime-feed.ts";
import { BinaryBody } from "./rpc.ts";
import { contract } from "./rpc-contract.ts";

// Ids travel as plain strings: the service checks them, so a malformed one is refused
// where a missing one would be, after the caller's rights.
const ofInbox = InboxRef;
const ofList = ListRef.pick({ inboxId: true }).extend({ listId: z.string() });
const ofEntry = ofList.extend({ entryId: z.string() });
const ofMessage = MessageRef.pick({ inboxId: true, messageId: true });
const ofDraft = ofInbox.extend({ draftId: z.string() });
const sending = SendCommand.omit({ messageId: true });
const answering = SendCommand.required({ messageId: true });

/** The tenant too: an entry is filed under its event's tenant, so a message of another tenant's workspace must not be shown there. */
const FeedMessagesQuery = z.object({ tenantId: z.uuid(), workspaceId: z.uuid(), messageIds: z.array(z.uuid()).min(1).max(100) });
/** Messages not found in the workspace (of that tenant) are left out. */
const FeedMessages = z.object({ messages: z.array(z.object({ message: FeedMessage, thread: FeedThread })) });

/** The mailbox's request subjects, `svc.mailbox.<resource>.<verb>`, with what each takes and answers. */
export const MailboxRpc = {
  inboxCreate: contract("svc.mailbox.inbox.create", z.object({ body: CreateInboxBody, query: z.object({ strict: StrictFlag }) }), CreatedInbox),
  inboxList: contract("svc.mailbox.inbox.list", ListInboxesQuery, InboxList, "query"),
  inboxGet: contract("svc.mailbox.inbox.get", ofInbox, Inbox),
  inboxUpdate: contract("svc.mailbox.inbox.update", UpdateInboxCommand.extend({ body: UpdateInboxBody }), Updated),
  inboxDelete: contract("svc.mailbox.inbox.delete", ofInbox, Deleted),
  addressAdd: contract("svc.mailbox.address.add", AddAddressCommand.extend({ body: AddAddressBody }), AddressAdded),
  addressRemove: contract("svc.mailbox.address.remove", RemoveAddressCommand, AddressRemoved),
  listCreate: contract("svc.mailbox.list.create", ofInbox.extend({ body: CreateListBody }), AddressList),
  listList: contract("svc.mailbox.list.list", ListListsRequest, ListsOfInbox),
  listGet: contract("svc.mailbox.list.get", ofList, AddressList),
  listUpdate: contract("svc.mailbox.list.update", ofList.extend({ body: UpdateListBody }), AddressList),
  listDelete: contract("svc.mailbox.list.delete", ofList, Deleted),
  entryList: contract("svc.mailbox.list-entry.list", ListEntriesRequest, EntryPage),
  entryAdd: contract("svc.mailbox.list-entry.add", ofList.extend({ body: AddEntryBody }), ListEntry),
  entryUpdate: contract("svc.mailbox.list-entry.update", ofEntry.extend({ body: UpdateEntryBody }), ListEntry),
  entryRemove: contract("svc.mailbox.list-entry.remove", ofEntry, Deleted),
  domainAdd: contract("svc.mailbox.domain.add", AddDomainCommand.extend({ body: CreateDomainBody }), Domain),
  domainList: contract("svc.mailbox.domain.list", ListDomainsRequest, DomainList),
  domainGet: contract("svc.mailbox.domain.get", DomainRef, Domain),
  domainRemove: contract("svc.mailbox.domain.remove", DomainRef, Deleted),
  domainVerify: contract("svc.mailbox.domain.verify", DomainRef, Domain),
  messageSend: contract("svc.mailbox.message.send", sending.extend({ body: SendBody }), SendResult),
  messageReply: contract("svc.mailbox.message.reply", answering.extend({ body: ReplyBody }), SendResult),
  messageReplyAll: contract("svc.mailbox.message.reply-all", answering.extend({ body: ReplyBody }), SendResult),
  messageForward: contract("svc.mailbox.message.forward", answering.extend({ body: ForwardBody }), SendResult),
  messageList: contract("svc.mailbox.message.list", ListMessagesQuery.extend({ inboxId: z.string() }), MessagePage, "query"),
  messageGet: contract("svc.mailbox.message.get", ofMessage, Message),
  messagePatch: contract("svc.mailbox.message.patch", ofMessage.extend({ body: FlagsBody }), Message),
  messageDelete: contract("svc.mailbox.message.delete", ofMessage, Deleted),
  /** Bytes, a slice at a time: the caller asks again from `offset` for the next one. */
  messageRaw: contract("svc.mailbox.message.raw", MessageRef.omit({ attachmentId: true }), BinaryBody),
  attachmentList: contract("svc.mailbox.attachment.list", ofMessage, AttachmentList),
  attachmentGet: contract("svc.mailbox.attachment.get", MessageRef.required({ attachmentId: true }), BinaryBody),
  threadGet: contract("svc.mailbox.thread.get", ThreadRef, Thread),
  draftCreate: contract("svc.mailbox.draft.create", ofInbox.extend({ body: DraftInput }), Draft),
  draftList: contract("svc.mailbox.draft.list", ListDraftsQuery.extend({ inboxId: z.string() }), DraftPage, "query"),
  draftGet: contract("svc.mailbox.draft.get", ofDraft, Draft),
  draftUpdate: contract("svc.mailbox.draft.update", ofDraft.extend({ body: DraftInput }), Draft),
  draftDelete: contract("svc.mailbox.draft.delete", ofDraft, Deleted),
  draftSend: contract("svc.mailbox.draft.send", ofDraft, DraftSent),
  mailboxView: contract("svc.mailbox.view.messages", MailboxViewQuery, MailboxPage, "query"),
  folderCounts: contract("svc.mailbox.view.folder-counts", FolderCountsQuery, FolderCounts, "query"),
  platformDomainGet: contract("svc.mailbox.platform-domain.get", NoParams, Domain),
  /** Internal, unscoped: smtp-ingress loads the address directory from here at start. */
  directoryPage: contract("svc.mailbox.directory.page", DirectoryPageQuery, DirectoryPage),
  /**
   * Internal, unscoped: the claims of addresses smtp-ingress's directory lacks, from the read
   * model, which holds events committed and not published yet (see directoryLookup).
   */
  directoryLookup: contract("svc.mailbox.directory.lookup", DirectoryLookupQuery, DirectoryLookup),
  /** Internal, unscoped (only realtime may ask): the messages of one workspace as the feed shows them. */
  feedMessages: contract("svc.mailbox.feed.messages", FeedMessagesQuery, FeedMessages),
  platformDomainVerify: contract("svc.mailbox.platform-domain.verify", NoParams, Domain),
};
