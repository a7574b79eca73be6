@echo off
rem ferry launcher for Windows: runs the CLI with the node.exe beside it, with
rem V8's young generation at 4 MB semi-spaces as packaging/ferry-launcher.sh
rem gives it on Linux (peak RSS, docs/file-replication.md "A smaller young generation").
"%~dp0node.exe" --max-semi-space-size=4 "%~dp0dist\cli\bin.js" %*
exit /b %ERRORLEVEL%
