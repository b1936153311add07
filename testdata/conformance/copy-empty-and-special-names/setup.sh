mkdir -p empty/nested-empty
printf x > ' leading space'
printf x > 'trailing space '
printf x > 'tab	in name'
printf x > 'back\slash'
printf x > '-dash'
printf x > '.hidden'
printf x > 'quote"s and '"'"'single'"'"
printf x > 'star*bracket[1]'
