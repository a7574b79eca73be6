# ferry probe: disks, their partitions, and the volume (drive letter, file
# system, usage) on each partition. Prints one JSON object on stdout.
# Runs on Windows Server 2012 R2 and later (Storage module, PowerShell 4+).
$ErrorActionPreference = 'Stop'
function Style($s) {
  switch ("$s") { '1' { 'MBR' } '2' { 'GPT' } 'MBR' { 'MBR' } 'GPT' { 'GPT' } default { 'RAW' } }
}
$disks = @()
foreach ($d in (Get-Disk | Sort-Object Number)) {
  $parts = @()
  foreach ($p in (Get-Partition -DiskNumber $d.Number -ErrorAction SilentlyContinue | Sort-Object PartitionNumber)) {
    $letter = $null
    if ($p.DriveLetter -and [int][char]$p.DriveLetter -ne 0) { $letter = "$($p.DriveLetter)" }
    $vol = $null
    $v = $p | Get-Volume -ErrorAction SilentlyContinue
    if ($v) {
      $vol = [ordered]@{
        FileSystem         = "$($v.FileSystem)"
        FileSystemLabel    = "$($v.FileSystemLabel)"
        Size               = [int64]$v.Size
        SizeRemaining      = [int64]$v.SizeRemaining
        AllocationUnitSize = [int64]$v.AllocationUnitSize
        UniqueId           = "$($v.UniqueId)"
      }
    }
    $parts += [ordered]@{
      PartitionNumber = [int]$p.PartitionNumber
      DriveLetter     = $letter
      AccessPaths     = @($p.AccessPaths | Where-Object { $_ })
      Offset          = [int64]$p.Offset
      Size            = [int64]$p.Size
      Type            = "$($p.Type)"
      GptType         = "$($p.GptType)"
      MbrType         = $p.MbrType
      Guid            = "$($p.Guid)"
      IsActive        = [bool]$p.IsActive
      IsBoot          = [bool]$p.IsBoot
      IsSystem        = [bool]$p.IsSystem
      Volume          = $vol
    }
  }
  $disks += [ordered]@{
    Number         = [int]$d.Number
    FriendlyName   = "$($d.FriendlyName)"
    Size           = [int64]$d.Size
    AllocatedSize  = [int64]$d.AllocatedSize
    PartitionStyle = (Style $d.PartitionStyle)
    IsBoot         = [bool]$d.IsBoot
    IsSystem       = [bool]$d.IsSystem
    BusType        = "$($d.BusType)"
    Partitions     = $parts
  }
}
[ordered]@{ Disks = $disks } | ConvertTo-Json -Depth 6 -Compress
