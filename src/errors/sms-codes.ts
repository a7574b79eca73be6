// The SMS error codes (section 5.1 of the SMS v3 reference, plus the HTTP
// statuses of section 5.2) that ferry raises or answers with: the client maps
// transport failures onto them, the local control plane puts them in its
// error bodies. Messages are the document's; `%s` is a cause filled in by
// smsMessage(). Codes not listed here are still carried through verbatim.
// Which of them another attempt can cure is ferry's call, made in
// codes.ts beside the FERRY_* codes.

export interface SmsErrorCode {
  /** The HTTP status the document gives (every 5.1 code is 400 except SMS.6542). */
  status: number;
  message: string;
}

export const SMS_ERROR_CODES = {
  'SMS.0007': { status: 400, message: 'Agent error.' },
  'SMS.0201': { status: 400, message: 'Network busy. Source server failed to connect to API Gateway.' },
  'SMS.0202': { status: 400, message: 'AK/SK authentication failed. Ensure that the AK and SK are correct.' },
  'SMS.0203': { status: 400, message: 'Connection from source server to API Gateway timed out.' },
  'SMS.0204': { status: 400, message: 'Insufficient permissions. Cause: %s. Obtain the required fine-grained permissions.' },
  'SMS.0205': { status: 400, message: 'AK/SK authentication failed. The time or time zone of the source server is incorrect.' },
  'SMS.0301': { status: 400, message: 'Failed to send the network request. Cause: %s' },
  'SMS.0302': { status: 400, message: 'Failed to resolve domain name %s.' },
  'SMS.0303': { status: 400, message: 'Unable to access domain name %s. Cause: %s' },
  'SMS.0304': { status: 400, message: 'Network request TLS/SSL authentication failed. Cause: %s' },
  'SMS.0411': { status: 400, message: 'Disk %s does not exist.' },
  'SMS.0426': { status: 400, message: 'Response body too long. Maximum length: %s' },
  'SMS.0501': { status: 400, message: 'Failed to report the task progress to SMS.' },
  'SMS.0502': { status: 400, message: 'Source server registration failed. Cause: %s' },
  'SMS.0503': { status: 400, message: 'Log upload failed. Cause: %s' },
  'SMS.0504': { status: 400, message: 'Failed to obtain task details. Cause: %s' },
  'SMS.0505': { status: 400, message: 'Task %s not found. Check whether the task has been deleted.' },
  'SMS.0507': { status: 400, message: 'Source server details deleted. Register it with SMS again.' },
  'SMS.0508': { status: 400, message: 'Failed to obtain commands from the source server. Cause %s' },
  'SMS.0511': { status: 400, message: 'Failed to obtain the private key. Cause: %s' },
  'SMS.0512': { status: 400, message: 'Failed to update task details.' },
  'SMS.0514': { status: 400, message: 'Updating source server information failed. Cause: %s' },
  'SMS.0515': { status: 400, message: 'Migration failed. Source disk information has changed. Delete target server configuration and restart the Agent.' },
  'SMS.0522': { status: 400, message: 'The parameter contains invalid characters: %s' },
  'SMS.0805': { status: 400, message: 'Failed to migrate partition %s to target server %s.' },
  'SMS.0806': { status: 400, message: 'Failed to synchronize partition %s to target server %s.' },
  'SMS.0807': { status: 400, message: 'Network error between source and target servers.' },
  'SMS.1315': { status: 400, message: 'Insufficient free space on target partition %s.' },
  'SMS.1702': { status: 400, message: 'An error occurred when converting the string into the JSON format.' },
  'SMS.1801': { status: 400, message: 'Migration or synchronization task failed.' },
  'SMS.1802': { status: 400, message: 'Migration or synchronization task paused.' },
  'SMS.6000': { status: 400, message: 'Service error.' },
  'SMS.6002': { status: 400, message: 'Source server name must consist of 1 to 64 characters.' },
  'SMS.6003': { status: 400, message: 'Only letters, digits, underscores (_), dot (.), and hyphens (-) are allowed.' },
  'SMS.6004': { status: 400, message: 'Invalid subtask name.' },
  'SMS.6005': { status: 400, message: 'The status of the source server does not meet the requirements.' },
  'SMS.6010': { status: 400, message: 'The request body is not in the JSON format.' },
  'SMS.6011': { status: 400, message: 'The JSON request body does not meet the specifications.' },
  'SMS.6012': { status: 400, message: 'Empty request body.' },
  'SMS.6013': { status: 400, message: 'Incomplete request parameters.' },
  'SMS.6014': { status: 400, message: 'The parameter part in the request body is too long.' },
  'SMS.6015': { status: 400, message: 'The request header is missing.' },
  'SMS.6016': { status: 400, message: 'The header type must be application/json.' },
  'SMS.6020': { status: 400, message: 'The command name is missing.' },
  'SMS.6021': { status: 400, message: 'The command from the Agent is inconsistent with that from SMS.' },
  'SMS.6022': { status: 400, message: 'Incorrect result format.' },
  'SMS.6023': { status: 400, message: 'Incorrect result_detail format.' },
  'SMS.6030': { status: 400, message: 'Invalid source server ID.' },
  'SMS.6031': { status: 400, message: 'The target server information is missing.' },
  'SMS.6032': { status: 400, message: 'The target server ID is missing.' },
  'SMS.6033': { status: 400, message: 'The disk information is missing.' },
  'SMS.6105': { status: 400, message: 'Physical volume size is missing or invalid.' },
  'SMS.6405': { status: 400, message: 'Invalid time format.' },
  'SMS.6509': { status: 400, message: 'Incompatible file system of the source server.' },
  'SMS.6521': { status: 400, message: 'Token-based authentication failed.' },
  'SMS.6522': { status: 400, message: 'The X-Auth-Token header field is missing.' },
  'SMS.6538': { status: 400, message: 'The new partition or logical volume size is less than the used space size.' },
  'SMS.6539': { status: 400, message: 'The disk space is less than the total size of all partitions.' },
  'SMS.6541': { status: 400, message: 'The VG size is smaller than the combined size of all LVs.' },
  'SMS.6610': { status: 400, message: 'The OS in the task conflicts with the source server OS.' },
  'SMS.6614': { status: 400, message: 'The target disk space must be greater than the total space of all partitions.' },
  'SMS.6615': { status: 400, message: 'The target server has been added to a migration task.' },
  'SMS.7601': { status: 400, message: 'Failed to delete the source server because a migration task is running on it.' },
  'SMS.7602': { status: 400, message: 'The specified source server does not exist.' },
  'SMS.7703': { status: 400, message: 'Task does not exist.' },
  'SMS.7712': { status: 400, message: 'Invalid task type.' },
  'SMS.7713': { status: 400, message: 'Only tasks in the Ready for next, Paused, or Error state can be started.' },
  'SMS.7714': { status: 400, message: 'Only running tasks can be paused.' },
  'SMS.7715': { status: 400, message: 'Only tasks in the Finished state or in the Continuous synchronization stage can be synchronized.' },
  'SMS.7716': { status: 400, message: 'Logs can be collected only after the current log collection is completed.' },
  'SMS.7717': { status: 400, message: 'Logs can be collected after the migration task is started.' },
  'SMS.7719': { status: 400, message: 'Tasks in current state cannot be deleted.' },
  'SMS.7722': { status: 400, message: 'Only tasks where the target servers have successfully started can be restarted.' },
  'SMS.7726': { status: 400, message: 'Failed to update the migration status or stage for the source server. Field copystate or migrationcycle is missing in the request body.' },
  'SMS.7727': { status: 400, message: 'Failed to update the migration status or stage for the source server. Field copystate or migrationcycle in the request body is empty.' },
  'SMS.7728': { status: 400, message: 'Change server replication state or migration cycle failed. Values of copystate and migrationcycle do not match.' },
  'SMS.9001': { status: 400, message: 'Invalid parameters.' },
  'SMS.9003': { status: 400, message: 'Insufficient permissions.' },
  'SMS.9004': { status: 403, message: 'The current account does not have the permission to execute policy %s.' },
  'SMS.6542': { status: 403, message: 'Your account has been frozen!' },
} as const satisfies Record<string, SmsErrorCode>;

export type SmsCode = keyof typeof SMS_ERROR_CODES;

/**
 * Status and message for a code, `%s` placeholders filled in order (missing
 * causes become "unknown"). Note: section 5.1 lists SMS.9004 under 400, but
 * every 4.x example answers it with 403 "Authentication failed."; ferry uses 403.
 */
export function smsMessage(code: SmsCode, ...causes: string[]): { status: number; error_code: SmsCode; error_msg: string } {
  const entry: SmsErrorCode = SMS_ERROR_CODES[code];
  let i = 0;
  const error_msg = entry.message.replace(/%s/g, () => causes[i++] ?? 'unknown');
  return { status: entry.status, error_code: code, error_msg };
}

export function isSmsCode(code: string): code is SmsCode {
  return Object.prototype.hasOwnProperty.call(SMS_ERROR_CODES, code);
}
