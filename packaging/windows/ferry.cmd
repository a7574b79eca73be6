@echo off
rem ferry launcher for Windows: runs the CLI with the node.exe beside it.
"%~dp0node.exe" "%~dp0dist\cli\bin.js" %*
exit /b %ERRORLEVEL%
