<?php

declare(strict_types=1);

require __DIR__ . '/../vendor/autoload.php';

use App\Info;
use GoldenPath\Greeting\Greeter;

$greeter = new Greeter('GoldenPath');

header('Content-Type: application/json');
echo json_encode(
    ['message' => $greeter->hello(), 'app' => 'php', 'loud' => $greeter->shout()] + Info::runtime(),
    JSON_UNESCAPED_SLASHES
), "\n";
