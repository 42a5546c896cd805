<?php

require __DIR__ . '/../vendor/autoload.php';

$log = new Monolog\Logger('app');
echo "hello\n";
