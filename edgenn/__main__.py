from edgenn.cli import main

main()
