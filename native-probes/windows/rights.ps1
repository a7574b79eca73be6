# ferry probe: whether the account running the agent can read raw disks and
# take VSS snapshots: member of Administrators, and its privileges.
# Prints one JSON object on stdout.
$ErrorActionPreference = 'Stop'
$id = [Security.Principal.WindowsIdentity]::GetCurrent()
$admin = (New-Object Security.Principal.WindowsPrincipal $id).IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)
$privs = @()
# /nh and our own header: the column titles are localized, the privilege names are not.
foreach ($line in (whoami /priv /fo csv /nh | Where-Object { $_ } | ConvertFrom-Csv -Header Name, Description, State)) {
  $privs += [ordered]@{ Name = "$($line.Name)"; State = "$($line.State)" }
}
[ordered]@{ User = "$($id.Name)"; IsAdministrator = [bool]$admin; Privileges = $privs } | ConvertTo-Json -Depth 4 -Compress
